/**
 * The simulator's cost model: each endpoint prefills one request at a time, first come first served, at a fixed rate
 * (tokens served from its prefix cache cost nothing), plus a fixed per-request overhead. A request's time to first
 * token is its wait behind earlier prefills plus its own prefill. Decoding is left out: with continuous batching it
 * runs beside prefills, and every policy generates the same tokens.
 */
export interface CostModelOptions {
  /** Prefill throughput of one endpoint, tokens per second. */
  prefillTokensPerSecond: number;
  /** Scheduling and first-decode-step time added to every request, seconds. */
  overheadSeconds: number;
}

export const DEFAULT_COST_MODEL: CostModelOptions = { prefillTokensPerSecond: 10_000, overheadSeconds: 0.02 };

export interface Dispatch {
  /** Seconds spent waiting behind earlier requests. */
  queueSeconds: number;
  /** Own prefill + overhead, seconds. */
  serviceSeconds: number;
  ttftSeconds: number;
}

export class EndpointQueues {
  private readonly busyUntil = new Map<string, number>();
  /** Seconds of prefill work each endpoint did. */
  readonly work = new Map<string, number>();
  readonly requests = new Map<string, number>();

  constructor(
    endpoints: readonly string[],
    private readonly options: CostModelOptions = DEFAULT_COST_MODEL,
  ) {
    if (!(options.prefillTokensPerSecond > 0))
      throw new Error(`prefillTokensPerSecond must be > 0, got ${options.prefillTokensPerSecond}`);
    if (!(options.overheadSeconds >= 0)) throw new Error(`overheadSeconds must be ≥ 0, got ${options.overheadSeconds}`);
    for (const e of endpoints) {
      this.busyUntil.set(e, 0);
      this.work.set(e, 0);
      this.requests.set(e, 0);
    }
  }

  /** Seconds of queued prefill work the endpoint has at `now` (the load a router sees). */
  backlog(endpoint: string, now: number): number {
    return Math.max(0, this.get(this.busyUntil, endpoint) - now);
  }

  /** Queues a request needing `prefillTokens` on the endpoint at `now`. */
  dispatch(endpoint: string, now: number, prefillTokens: number): Dispatch {
    const start = Math.max(now, this.get(this.busyUntil, endpoint));
    const serviceSeconds = prefillTokens / this.options.prefillTokensPerSecond + this.options.overheadSeconds;
    this.busyUntil.set(endpoint, start + serviceSeconds);
    this.work.set(endpoint, this.get(this.work, endpoint) + serviceSeconds);
    this.requests.set(endpoint, this.get(this.requests, endpoint) + 1);
    return { queueSeconds: start - now, serviceSeconds, ttftSeconds: start - now + serviceSeconds };
  }

  /** Busiest endpoint's work over the mean (1 = perfectly even). */
  imbalance(): number {
    const work = [...this.work.values()];
    const mean = work.reduce((a, b) => a + b, 0) / work.length;
    return mean === 0 ? 1 : Math.max(...work) / mean;
  }

  private get(map: Map<string, number>, endpoint: string): number {
    const v = map.get(endpoint);
    if (v === undefined) throw new Error(`unknown endpoint ${endpoint}`);
    return v;
  }
}
