import { prng } from '../publisher/workload.js';

/** The simulator's seeded randomness: uniform, integer ranges, exponential gaps (Poisson arrivals) and Zipf ranks. */
export class Random {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = prng(seed);
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.next();
  }

  /** Uniform integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Exponential gap with the given rate (events per second): successive gaps make a Poisson process. */
  exponential(rate: number): number {
    return -Math.log(1 - this.next()) / rate;
  }

  /** Token ids with a BPE-like skew (frequent tokens have small ids). */
  tokens(n: number): number[] {
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = Math.min(151_642, Math.floor(Math.exp(this.next() * Math.log(151_643))));
    return out;
  }
}

/** Ranks 0..n-1 drawn with P(k) ∝ 1 / (k + 1)^s: a few popular items, a long tail. */
export class Zipf {
  private readonly cdf: Float64Array;

  constructor(
    readonly n: number,
    readonly s: number,
  ) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`Zipf needs n ≥ 1, got ${n}`);
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 0; k < n; k++) this.cdf[k] = sum += 1 / (k + 1) ** s;
    for (let k = 0; k < n; k++) this.cdf[k] /= sum;
  }

  sample(random: Random): number {
    const u = random.uniform();
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}
