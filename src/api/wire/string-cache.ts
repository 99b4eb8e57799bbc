/**
 * Short strings decoded from the wire, remembered by their bytes: a Score request names the same model and the same
 * endpoints call after call (16 candidates a call in the benchmark), and decoding each afresh cost ~2–3 µs and ~0.5 KB
 * of garbage per call, plus a fresh hash in every Set/Map lookup downstream (validate.ts, the index's endpoint table)
 * that a string seen before has cached.
 *
 * Direct-mapped: a slot per hash of the bytes, no probing; a collision replaces the slot, so the cache is bounded
 * (SLOTS × MAX_BYTES bytes of keys) whatever the traffic, and a miss costs one hash and one decode. The string returned
 * is always the decode of exactly these bytes (UTF-8, bad bytes as U+FFFD, as `Buffer.toString` gives), remembered or
 * not.
 */

/** Longest string remembered (bytes); longer ones are decoded every time. Endpoints and model names fit. */
export const MAX_BYTES = 64;
const SLOTS = 1024;

export class StringCache {
  private readonly keys = new Uint8Array(SLOTS * MAX_BYTES);
  private readonly lengths = new Int16Array(SLOTS).fill(-1);
  private readonly values: string[] = new Array<string>(SLOTS).fill('');
  hits = 0;
  misses = 0;

  /** The UTF-8 decode of `buf[start, end)`. */
  decode(buf: Buffer, start: number, end: number): string {
    const n = end - start;
    if (n > MAX_BYTES) return buf.toString('utf8', start, end);
    // FNV-1a over the bytes, folded to a slot.
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i], 0x01000193);
    const slot = (h ^ (h >>> 15)) & (SLOTS - 1);
    const at = slot * MAX_BYTES;
    const keys = this.keys;
    if (this.lengths[slot] === n) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (keys[at + i] !== buf[start + i]) {
          same = false;
          break;
        }
      }
      if (same) {
        this.hits++;
        return this.values[slot];
      }
    }
    this.misses++;
    const value = buf.toString('utf8', start, end);
    keys.set(buf.subarray(start, end), at);
    this.lengths[slot] = n;
    this.values[slot] = value;
    return value;
  }
}

/** The cache the Score decoders share on this thread (decoding is synchronous: one call at a time uses it). */
export const wireNames = new StringCache();
