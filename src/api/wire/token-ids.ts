/**
 * Token ids read straight off the wire into a Uint32Array: the slab the arrays are views of, the sink packed runs and
 * unpacked values append to, and the packed-run reader.
 */

import { WordSlab } from '../../common/index.js';
import type { Reader } from './reader.js';

/** Token arrays are views into shared 256 KiB slabs (common/word-slab.ts); large arrays get their own buffer. */
const slab = new WordSlab(64 * 1024);

/** Token ids, appended run by run (packed runs and single unpacked values, in any mix). */
export class TokenSink {
  ids: Uint32Array = new Uint32Array(0);
  length = 0;

  reserve(extra: number): void {
    if (this.length + extra <= this.ids.length) return;
    const grown = slab.uint32(Math.max(this.length + extra, this.ids.length * 2));
    grown.set(this.ids.subarray(0, this.length));
    this.ids = grown;
  }

  result(): Uint32Array {
    return this.length === this.ids.length ? this.ids : this.ids.subarray(0, this.length);
  }
}

/** One packed run of token ids (a LEN field), appended to `sink`. */
export function readPackedTokens(r: Reader, sink: TokenSink): void {
  const end = r.lengthEnd();
  const buf = r.buf;
  // Varints in the run = bytes without the continuation bit: one pass sizes the array exactly (branch-free: the
  // lengths of real token ids are random, and mispredicted branches cost more than the arithmetic).
  let count = 0;
  for (let p = r.pos; p < end; p++) count += 1 - (buf[p] >>> 7);
  sink.reserve(count);
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
