/**
 * Token ids read straight off the wire into a Uint32Array: one pass over each packed run into a reused scratch
 * buffer, then one copy of exactly the ids read into a view of a shared slab (common/word-slab.ts).
 *
 * Why a scratch buffer rather than sizing the result first: sizing needs a counting pass over the run's bytes before
 * decoding them (two reads of every byte); the run's byte length already bounds its id count (every varint takes at
 * least one byte), so the scratch is grown once per run to that bound and the decode loop needs no capacity check.
 */

import { WordSlab } from '../../common/index.js';
import type { Reader } from './reader.js';

/** Token arrays are views into shared 256 KiB slabs (common/word-slab.ts); large arrays get their own buffer. */
const slab = new WordSlab(64 * 1024);

/** Scratch words kept between requests; a larger scratch (a huge prompt) is dropped after its request. */
const SCRATCH_KEEP = 64 * 1024;

/**
 * Token ids, appended run by run (packed runs and single unpacked values, in any mix). One sink serves every request:
 * decoding is synchronous, and `begin()` starts each request afresh (also after a decode that threw).
 */
export class TokenSink {
  ids = new Uint32Array(4096);
  length = 0;

  begin(): void {
    this.length = 0;
  }

  reserve(extra: number): void {
    const need = this.length + extra;
    if (need <= this.ids.length) return;
    let size = this.ids.length * 2;
    while (size < need) size *= 2;
    const grown = new Uint32Array(size);
    grown.set(this.ids.subarray(0, this.length));
    this.ids = grown;
  }

  /** The ids read, in a slab view of their own (the scratch is reused by the next request). */
  result(): Uint32Array {
    const n = this.length;
    const out = slab.uint32(n);
    if (n > 0) out.set(n === this.ids.length ? this.ids : this.ids.subarray(0, n));
    if (this.ids.length > SCRATCH_KEEP) this.ids = new Uint32Array(4096);
    this.length = 0;
    return out;
  }
}

/** One packed run of token ids (a LEN field), appended to `sink`. */
export function readPackedTokens(r: Reader, sink: TokenSink): void {
  const end = r.lengthEnd();
  const buf = r.buf;
  // At most one id per byte of the run.
  sink.reserve(end - r.pos);
  const ids = sink.ids;
  let n = sink.length;
  let p = r.pos;
  // Token ids are below 2^21 in every vocabulary: 1 to 3 bytes, decoded without branching on the length; a longer
  // varint (or one near the end of the run) goes through the checked reader.
  const inlineEnd = end - 2;
  for (;;) {
    while (p < inlineEnd) {
      const b0 = buf[p];
      const b1 = buf[p + 1];
      const b2 = buf[p + 2];
      const more0 = b0 >>> 7;
      const more1 = more0 & (b1 >>> 7);
      if ((more1 & (b2 >>> 7)) !== 0) break;
      ids[n++] = (b0 & 0x7f) | (-more0 & ((b1 & 0x7f) << 7)) | (-more1 & ((b2 & 0x7f) << 14));
      p += 1 + more0 + more1;
    }
    if (p >= end) break;
    const outer = r.end;
    r.end = end;
    r.pos = p;
    ids[n++] = r.varint32();
    p = r.pos;
    r.end = outer;
  }
  r.pos = p;
  sink.length = n;
}
