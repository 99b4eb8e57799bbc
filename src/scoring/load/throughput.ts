/**
 * Per-endpoint prefill throughput (tokens per second): the configured default until PrefillComplete reports how long
 * a prefill took (`prefill_ms`), then an exponentially weighted moving average of the observed rates
 * (rate = prefilled tokens / prefill seconds; new = alpha × rate + (1 − alpha) × old, starting from the default).
 */
export class ThroughputTable {
  private readonly learned = new Map<string, number>();

  constructor(
    private readonly defaultTokensPerSecond: number,
    private readonly alpha: number,
    /** Endpoints remembered at once; the one updated longest ago is forgotten first. */
    private readonly maxEndpoints = 65_536,
  ) {}

  get(endpoint: string): number {
    return this.learned.get(endpoint) ?? this.defaultTokensPerSecond;
  }

  /** Folds in one observed prefill; ignored unless both figures are positive and finite. Returns the new value. */
  observe(endpoint: string, tokens: number, prefillMs: number): number {
    const old = this.get(endpoint);
    if (!(tokens > 0) || !(prefillMs > 0) || !Number.isFinite(tokens) || !Number.isFinite(prefillMs)) return old;
    const rate = tokens / (prefillMs / 1000);
    const next = this.alpha * rate + (1 - this.alpha) * old;
    this.learned.delete(endpoint);
    this.learned.set(endpoint, next);
    if (this.learned.size > this.maxEndpoints) this.learned.delete(this.learned.keys().next().value as string);
    return next;
  }
}
