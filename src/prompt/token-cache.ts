/**
 * LRU cache of tokenized text chunks, bounded by approximate bytes (UTF-16 text + 4 bytes per token id).
 * Writes are staged per request and committed only when the whole request succeeded.
 */
export class TokenCache {
  private readonly map = new Map<string, Uint32Array>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes: number) {}

  get size(): number {
    return this.map.size;
  }

  get usedBytes(): number {
    return this.bytes;
  }

  get(key: string): Uint32Array | undefined {
    const v = this.map.get(key);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key); // move to the most recent end
    this.map.set(key, v);
    return v;
  }

  set(key: string, ids: Uint32Array): void {
    const cost = key.length * 2 + ids.byteLength + 64;
    if (cost > this.maxBytes) return;
    const old = this.map.get(key);
    if (old) {
      this.map.delete(key);
      this.bytes -= key.length * 2 + old.byteLength + 64;
    }
    this.map.set(key, ids);
    this.bytes += cost;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= k.length * 2 + v.byteLength + 64;
    }
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }
}
