/**
 * Typed-array views handed out from shared slabs of uint32 words, as Node's Buffer pool does for small buffers: a new
 * typed array with its own buffer costs ~1 µs (a malloc'd backing store that V8 counts towards its GC triggers), a
 * view into a slab ~50 ns. A slab lives as long as any of its views, so a view kept beyond its call must be copied.
 * Used by the gRPC token-id reader (api/wire/token-ids.ts) and the msgpack packed lists (events/decode/packed-lists.ts).
 */
export class WordSlab {
  /** The current slab; `claim()` may replace it, so read it after claiming. */
  words: Uint32Array;
  /** Words of `words` handed out. */
  used = 0;

  constructor(private readonly slabWords = 1 << 16) {
    this.words = new Uint32Array(slabWords);
  }

  /**
   * Reserves `n` words (rounded up to an even count, so a BigUint64Array view stays 8-byte aligned) and returns the
   * index of the first in `words`. A claim larger than a slab gets a slab of its own size.
   */
  claim(n: number): number {
    const aligned = (n + 1) & ~1;
    if (this.used + aligned > this.words.length) {
      this.words = new Uint32Array(Math.max(this.slabWords, aligned));
      this.used = 0;
    }
    const at = this.used;
    this.used += aligned;
    return at;
  }

  /**
   * Gives back everything claimed since the slab was `words` with `used` words handed out (nothing handed out since):
   * a slab claim() put in its place is dropped, not kept for later claims.
   */
  restore(words: Uint32Array, used: number): void {
    this.words = words;
    this.used = used;
  }

  /** `n` words as a Uint32Array view (own buffer above `maxView` words: a large array would pin a slab). */
  uint32(n: number, maxView = this.slabWords >>> 3): Uint32Array {
    if (n > maxView) return new Uint32Array(n);
    const at = this.claim(n);
    return this.words.subarray(at, at + n);
  }
}
