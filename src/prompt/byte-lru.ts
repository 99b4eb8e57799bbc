/** A least-recently-used map of byte arrays bounded by entry count and total bytes (fetched image bodies). */
export class ByteLru {
  private readonly map = new Map<string, Uint8Array>();
  private used = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get bytes(): number {
    return this.used;
  }

  get(key: string): Uint8Array | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  /** Stores `value` unless it alone exceeds the byte bound; evicts the oldest entries to make room. */
  set(key: string, value: Uint8Array): void {
    const old = this.map.get(key);
    if (old !== undefined) {
      this.map.delete(key);
      this.used -= old.length;
    }
    if (this.maxEntries === 0 || value.length > this.maxBytes) return;
    this.map.set(key, value);
    this.used += value.length;
    for (const [k, v] of this.map) {
      if (this.map.size <= this.maxEntries && this.used <= this.maxBytes) break;
      this.map.delete(k);
      this.used -= v.length;
    }
  }
}
