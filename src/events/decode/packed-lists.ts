/**
 * Packed field lists of the msgpack reader (msgpack-reader.ts): a depth-3 array whose elements are all unsigned ints
 * becomes a Uint32Array when every element fits 32 bits, else a BigUint64Array, written into views of a shared slab
 * buffer. Token ids and block hashes are such lists: they need no JS array, no bigint per element and no second
 * conversion pass. Readers of depth-3 values accept both (wireList() turns them back into an Array).
 */

import { WordSlab } from '../../common/index.js';

/** A depth-3 list of unsigned ints, as the reader packs it. */
export type PackedList = Uint32Array | BigUint64Array;

export function isPackedList(value: unknown): value is PackedList {
  return value instanceof Uint32Array || value instanceof BigUint64Array;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A depth-3 array as a plain Array, whichever way the reader returned it (for the readers off the hot path). */
export function wireList(value: unknown): unknown[] | null {
  if (Array.isArray(value)) return value;
  if (value instanceof Uint32Array) return Array.from(value);
  if (value instanceof BigUint64Array) return Array.from(value, (v) => (v <= MAX_SAFE ? Number(v) : v));
  return null;
}

/** Bytes taken by an unsigned int of at most 32 bits, by type byte (positive fixint, uint8/16/32); 0 for any other. */
const UINT_LENGTH = new Uint8Array(256);
/** Right shift that leaves the value of a uint8/16/32 in the big-endian word of the 4 bytes after its type byte. */
const UINT_SHIFT = new Uint8Array(256);
UINT_LENGTH.fill(1, 0, 0x80);
UINT_LENGTH[0xcc] = 2;
UINT_LENGTH[0xcd] = 3;
UINT_LENGTH[0xce] = 5;
UINT_SHIFT[0xcc] = 24;
UINT_SHIFT[0xcd] = 16;
/** Lists longer than this are checked before their buffer is claimed (see packed()). */
const LARGE_LIST = 4096;
/** packedNarrow()'s answer when the list needs 64-bit values. */
const WIDE = Symbol('wide');
/** Size of the buffers packed lists are carved from (256 KB); a longer list gets a buffer of its own size. */
const SLAB_WORDS = 1 << 16;
/** Word order of a uint64 in a Uint32Array view of a BigUint64Array (the platform's byte order). */
const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = LITTLE_ENDIAN ? 1 : 0;
/** A Buffer, like every payload the reader passes: the field keeps one type (an element access that stays monomorphic). */
const EMPTY = Buffer.alloc(0);

/** Reads packed lists out of the reader's payload; one per reader, reused across payloads. */
export class PackedListReader {
  /** After a successful read(): the payload offset just past the list. */
  after = 0;
  private b: Uint8Array = EMPTY;
  private at = 0;
  private end = 0;
  /**
   * Where packed lists are written: views of one shared buffer, which lives as long as any of its views (so a list
   * kept beyond its batch must be copied, as the ingest path does with every list it keeps).
   */
  private readonly slab = new WordSlab(SLAB_WORDS);

  /**
   * The `count` values at bytes[pos..end) as a packed list (then `after` is where the list ends), or null when one is
   * not an unsigned int or the list is cut short (the reader's generic path then reads or reports it).
   */
  read(bytes: Uint8Array, pos: number, end: number, count: number): PackedList | null {
    this.b = bytes;
    this.at = pos;
    this.end = end;
    const list = this.packed(count);
    this.b = EMPTY;
    return list;
  }

  /**
   * `count` elements that are all unsigned ints, packed (see the header); null, with nothing consumed, when one is
   * not (or the list is cut short: the generic path then reports it). One pass in the common cases: a list is read as
   * 32-bit values unless its first element is a uint64, and read again as 64-bit values only if a later one is.
   */
  private packed(count: number): PackedList | null {
    if (count > LARGE_LIST) {
      // Checked before anything is allocated: a long list that is not all unsigned ints costs no buffer of its size.
      const width = this.uintWidth(count);
      if (width === null) return null;
      return width === 64 ? this.packedWide(count) : (this.packedNarrow(count) as Uint32Array | null);
    }
    if (this.b[this.at] !== 0xcf) {
      const narrow = this.packedNarrow(count);
      if (narrow !== WIDE) return narrow;
    }
    return this.packedWide(count);
  }

  /** 32 or 64 when the next `count` values are all unsigned ints (64: one needs it), else null. Consumes nothing. */
  private uintWidth(count: number): 32 | 64 | null {
    const b = this.b;
    const end = this.end;
    let p = this.at;
    let width: 32 | 64 = 32;
    for (let i = 0; i < count; i++) {
      if (p >= end) return null;
      const t = b[p];
      if (t === 0xcf) {
        width = 64;
        p += 9;
        continue;
      }
      const length = UINT_LENGTH[t];
      if (length === 0) return null;
      p += length;
    }
    return p <= end ? width : null;
  }

  /** The list as uint32 values; WIDE when an element is a uint64 (nothing consumed then, nor for null). */
  private packedNarrow(count: number): Uint32Array | null | typeof WIDE {
    const b = this.b;
    const end = this.end;
    const slab = this.slab.words;
    const used = this.slab.used;
    const word = this.slab.claim(count);
    const out = this.slab.words;
    let p = this.at;
    let i = word;
    // Token ids mix all four widths at random, so branching on the width mispredicts: while 5 bytes are left, read
    // the 4 bytes after the type byte as one big-endian word and shift the value out by a table.
    for (; i < word + count && p + 5 <= end; i++) {
      const t = b[p];
      const length = UINT_LENGTH[t];
      if (length === 0) break;
      const after = ((b[p + 1] << 24) | (b[p + 2] << 16) | (b[p + 3] << 8) | b[p + 4]) >>> 0;
      out[i] = t <= 0x7f ? t : after >>> UINT_SHIFT[t];
      p += length;
    }
    for (; i < word + count; i++) {
      const t = p < end ? b[p] : -1;
      if (t >= 0 && t <= 0x7f) {
        out[i] = t;
        p += 1;
        continue;
      }
      let v: number;
      if (t === 0xcc && p + 2 <= end) {
        v = b[p + 1];
        p += 2;
      } else if (t === 0xcd && p + 3 <= end) {
        v = (b[p + 1] << 8) | b[p + 2];
        p += 3;
      } else if (t === 0xce && p + 5 <= end) {
        v = ((b[p + 1] << 24) | (b[p + 2] << 16) | (b[p + 3] << 8) | b[p + 4]) >>> 0;
        p += 5;
      } else {
        this.slab.restore(slab, used);
        return t === 0xcf ? WIDE : null;
      }
      out[i] = v;
    }
    this.after = p;
    return new Uint32Array(out.buffer, 4 * word, count);
  }

  /** The list as uint64 values; null when an element is not an unsigned int (nothing consumed then). */
  private packedWide(count: number): BigUint64Array | null {
    const b = this.b;
    const end = this.end;
    const slab = this.slab.words;
    const used = this.slab.used;
    const word = this.slab.claim(2 * count);
    const out = this.slab.words;
    let p = this.at;
    for (let i = 0; i < count; i++) {
      const t = p < end ? b[p] : -1;
      let lo: number;
      let hi = 0;
      if (t === 0xcf && p + 9 <= end) {
        hi = ((b[p + 1] << 24) | (b[p + 2] << 16) | (b[p + 3] << 8) | b[p + 4]) >>> 0;
        lo = ((b[p + 5] << 24) | (b[p + 6] << 16) | (b[p + 7] << 8) | b[p + 8]) >>> 0;
        p += 9;
      } else if (t >= 0 && t <= 0x7f) {
        lo = t;
        p += 1;
      } else if (t === 0xcc && p + 2 <= end) {
        lo = b[p + 1];
        p += 2;
      } else if (t === 0xcd && p + 3 <= end) {
        lo = (b[p + 1] << 8) | b[p + 2];
        p += 3;
      } else if (t === 0xce && p + 5 <= end) {
        lo = ((b[p + 1] << 24) | (b[p + 2] << 16) | (b[p + 3] << 8) | b[p + 4]) >>> 0;
        p += 5;
      } else {
        this.slab.restore(slab, used);
        return null;
      }
      out[word + LO + 2 * i] = lo;
      out[word + HI + 2 * i] = hi;
    }
    this.after = p;
    return new BigUint64Array(out.buffer, 4 * word, count);
  }
}
