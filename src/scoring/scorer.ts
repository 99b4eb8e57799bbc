import { MatchRows } from '../index/match-rows.js';
import type { TierRegistry } from '../index/tiers.js';
import type { Index, LookupOptions } from '../index/types.js';
import { scoreMatches, type ScoreResult } from './score.js';
import { scoreRows } from './score-rows.js';
import { TierWeights } from './tier-weights.js';

export interface ScoreOptions {
  candidates?: readonly string[];
  /** Per-request tier weights, on top of the configured ones. */
  tierWeights?: Readonly<Record<string, number>>;
  /** Consider at most this many blocks (0 or absent = all). */
  maxBlocks?: number;
}

/** Longest-prefix scoring of request keys against an index. */
export class Scorer {
  /** The rows every synchronous lookup fills (scoreNow runs to the end before another call can start). */
  private readonly rows = new MatchRows();
  private readonly lookupOptions: LookupOptions = {};

  constructor(
    private readonly index: Index,
    private readonly tiers: TierRegistry,
    private readonly weights: TierWeights = new TierWeights(),
  ) {}

  /** Whether scoreNow can answer: the index looks up synchronously (in memory; Redis cannot). */
  get synchronous(): boolean {
    return this.index.lookupRows !== undefined;
  }

  async score(keys: BigUint64Array, options: ScoreOptions = {}): Promise<ScoreResult> {
    if (this.synchronous) return this.scoreNow(keys, options);
    const { totalBlocks, weights, empty } = this.plan(keys, options);
    if (empty) return empty;
    const matches = await this.index.lookup(keys, { candidates: options.candidates, maxBlocks: totalBlocks });
    return scoreMatches(matches, totalBlocks, weights, this.tiers, options.candidates);
  }

  /** score() without a promise, for a synchronous index (see `synchronous`); throws on any other. */
  scoreNow(keys: BigUint64Array, options: ScoreOptions = {}): ScoreResult {
    if (this.index.lookupRows === undefined)
      throw new Error(`the ${this.index.backend} index cannot be read synchronously`);
    const { totalBlocks, weights, empty } = this.plan(keys, options);
    if (empty) return empty;
    const lookup = this.lookupOptions;
    lookup.candidates = options.candidates;
    lookup.maxBlocks = totalBlocks;
    this.index.lookupRows(keys, lookup, this.rows);
    lookup.candidates = undefined; // not kept alive past the call
    return scoreRows(this.rows, totalBlocks, weights, this.tiers, options.candidates);
  }

  /** What both paths share: the blocks considered, the weights, and the answer when there is nothing to look up. */
  private plan(
    keys: BigUint64Array,
    options: ScoreOptions,
  ): { totalBlocks: number; weights: TierWeights; empty: ScoreResult | null } {
    const maxBlocks = options.maxBlocks && options.maxBlocks > 0 ? options.maxBlocks : keys.length;
    const totalBlocks = Math.min(keys.length, maxBlocks);
    const weights = this.weights.with(options.tierWeights);
    const empty =
      totalBlocks === 0 || (options.candidates && options.candidates.length === 0)
        ? scoreMatches([], totalBlocks, weights, this.tiers, options.candidates)
        : null;
    return { totalBlocks, weights, empty };
  }
}
