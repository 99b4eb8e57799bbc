import type { Logger } from '../ops/index.js';

/**
 * Score calls for a model no endpoint publishes: counted, and warned about once per model name (the first 100 names;
 * then once a minute for any), with the count so far. A picker with a misspelt model name would otherwise get zero
 * scores silently and route at random.
 */
export class UnknownModelWarnings {
  total = 0;
  private readonly perModel = new Map<string, number>();
  private lastOverflowWarning = -Infinity;

  constructor(private readonly log: Logger) {}

  count(model: string): void {
    this.total++;
    const seen = this.perModel.get(model);
    if (seen !== undefined) {
      this.perModel.set(model, seen + 1);
      return;
    }
    if (this.perModel.size < 100) {
      this.perModel.set(model, 1);
    } else if (Date.now() - this.lastOverflowWarning < 60_000) return;
    else this.lastOverflowWarning = Date.now();
    this.log.warn(
      { model: model.slice(0, 200), unknownModelScores: this.total },
      'Score for a model no endpoint has published: scores are zero (a misspelt or unserved model?)',
    );
  }
}
