/**
 * Expiry times of speculative entries. Speculative entries are few next to confirmed ones, so their expiry lives
 * beside the pool rather than in every entry: a Map entry index → expiresAt (ms) answers "is it expired?" at read
 * time, and a binary min-heap of (expiresAt, entry) lets sweeps reclaim due entries in expiry order.
 *
 * Heap items are never updated in place: extending an expiry pushes a new item, and an item whose time no longer
 * equals the Map's (extended, confirmed, released, or the index reused) is dropped when popped.
 */

export class ExpiryQueue {
  private readonly expiresAt = new Map<number, number>();
  private times = new Float64Array(64);
  private entries = new Uint32Array(64);
  private n = 0;

  /** Speculative entries tracked. */
  get size(): number {
    return this.expiresAt.size;
  }

  get(e: number): number | undefined {
    return this.expiresAt.get(e);
  }

  set(e: number, expiresAt: number): void {
    this.expiresAt.set(e, expiresAt);
    this.push(expiresAt, e);
  }

  delete(e: number): void {
    this.expiresAt.delete(e);
  }

  /** Earliest pending heap time (possibly stale), Infinity when none. */
  nextDue(): number {
    return this.n > 0 ? this.times[0] : Infinity;
  }

  /**
   * Calls onExpire for entries whose expiry is ≤ now, earliest first, at most limit of them; the callback must
   * delete the entry from this queue. Returns how many expired.
   */
  sweep(now: number, limit: number, onExpire: (e: number) => void): number {
    let expired = 0;
    while (this.n > 0 && this.times[0] <= now && expired < limit) {
      const t = this.times[0];
      const e = this.entries[0];
      this.pop();
      if (this.expiresAt.get(e) === t) {
        onExpire(e);
        expired++;
      }
    }
    return expired;
  }

  get bytes(): number {
    return this.times.byteLength + this.entries.byteLength;
  }

  clear(): void {
    this.expiresAt.clear();
    this.times = new Float64Array(64);
    this.entries = new Uint32Array(64);
    this.n = 0;
  }

  private push(t: number, e: number): void {
    if (this.n === this.times.length) {
      const times = new Float64Array(this.n * 2);
      times.set(this.times);
      const entries = new Uint32Array(this.n * 2);
      entries.set(this.entries);
      this.times = times;
      this.entries = entries;
    }
    const times = this.times;
    const entries = this.entries;
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (times[p] <= t) break;
      times[i] = times[p];
      entries[i] = entries[p];
      i = p;
    }
    times[i] = t;
    entries[i] = e;
  }

  private pop(): void {
    const times = this.times;
    const entries = this.entries;
    const n = --this.n;
    if (n === 0) return;
    const t = times[n];
    const e = entries[n];
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && times[c + 1] < times[c]) c++;
      if (times[c] >= t) break;
      times[i] = times[c];
      entries[i] = entries[c];
      i = c;
    }
    times[i] = t;
    entries[i] = e;
    if (n < times.length >>> 2 && times.length > 64) this.shrink();
  }

  private shrink(): void {
    const len = this.times.length >>> 1;
    this.times = this.times.slice(0, len);
    this.entries = this.entries.slice(0, len);
  }
}
