import { isUtf8 } from 'node:buffer';
import { InvalidInputError } from '../../common/index.js';
import { PackedListReader } from './packed-lists.js';

// Packed lists are read by packed-lists.ts; their type and helpers are part of this reader's surface.
export { isPackedList, type PackedList, wireList } from './packed-lists.js';

/**
 * The msgpack decoder of event payloads: one pass over the bytes that yields the same values as `@msgpack/msgpack`
 * with `useBigInt64` (see wire-values.ts), checks what that library does not, and packs the big integer lists of an
 * event straight into typed arrays.
 *
 * Values: nil → null; bool; ints of 8–32 bits and floats → number; 64-bit ints → bigint; str → string; bin →
 * Uint8Array (a view into the payload); array → Array; map → plain object (string or int keys; `__proto__` refused);
 * ext → WireExt, or Date for a valid timestamp (ext −1).
 *
 * Field lists, packed: an array at depth 3 — a field of an event, `root → events → event → field` in both the array
 * and the map layouts — whose elements are all unsigned ints becomes a Uint32Array when every element fits 32 bits,
 * else a BigUint64Array. Token ids and block hashes are such lists: they need no JS array, no bigint per element and
 * no second conversion pass (packed-lists.ts). Readers of depth-3 values accept both (wireList() turns them back into an
 * Array).
 *
 * Checks, so that hostile bytes cost neither memory nor time nor correctness:
 * - declared sizes: every value takes at least one byte, so the values still owed by the open containers can never
 *   exceed the bytes left; a header declaring more is refused before anything is allocated for it (a few bytes of
 *   nested array16 headers would otherwise allocate ~128 KB per 3 bytes);
 * - strings must be valid UTF-8 (as msgspec, vLLM's own decoder, requires): a decoder that maps invalid bytes to U+FFFD
 *   would make two different LoRA names or multimodal identifiers hash alike;
 * - values nested deeper than MAX_DEPTH are checked (sizes, type bytes, UTF-8; not the types of map keys) and skipped
 *   without recursion (read as null: no event field is nested that deep, so no reader can tell), so deep nesting cannot
 *   overflow the stack;
 * - truncation, invalid type bytes and trailing bytes are errors.
 * Every problem throws MsgpackError; nothing else is thrown.
 */

export class MsgpackError extends InvalidInputError {}

/** An ext value other than a valid timestamp. */
export class WireExt {
  constructor(
    readonly type: number,
    readonly data: Uint8Array,
  ) {}
}

/** Beyond this depth values are checked and skipped (vLLM's deepest field, an extra_keys item, is at depth 5). */
export const MAX_DEPTH = 64;
const PACKED_DEPTH = 3;
/** Strings up to this many bytes are looked up in the reader's cache of short ASCII strings. */
const CACHED_MAX = 32;
const CACHE_MASK = 511;

/** Native Buffer slices, reached without Buffer's argument handling (strings are the commonest small value). */
const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;
const utf8Slice = Buffer.prototype.utf8Slice as (this: Uint8Array, start: number, end: number) => string;

class Reader {
  private bytes: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(new ArrayBuffer(0));
  private end = 0;
  private pos = 0;
  /** Values still owed: the root plus the unread elements (maps: keys and values) of every open container. */
  private pending = 0;
  /** Field lists at depth 3, packed into typed arrays (packed-lists.ts). */
  private readonly lists = new PackedListReader();
  /** Recently read short ASCII strings, by hash of their bytes. */
  private readonly cache: (string | undefined)[] = new Array(CACHE_MASK + 1).fill(undefined);
  /** The bytes of each cached string (comparing bytes with bytes is cheaper than with a string's characters). */
  private readonly cacheBytes: (Uint8Array | undefined)[] = new Array(CACHE_MASK + 1).fill(undefined);

  decode(payload: Uint8Array): unknown {
    this.bytes = Buffer.isBuffer(payload)
      ? payload
      : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    this.view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    this.end = payload.byteLength;
    this.pos = 0;
    this.pending = 1;
    try {
      const value = this.value(0);
      if (this.pos !== this.end) {
        throw new MsgpackError(`Extra ${this.end - this.pos} of ${this.end} byte(s) found at buffer[${this.pos}]`);
      }
      return value;
    } finally {
      this.bytes = EMPTY;
      this.view = EMPTY_VIEW;
    }
  }

  private value(depth: number): unknown {
    if (depth > MAX_DEPTH) {
      this.skip();
      return null;
    }
    const at = this.pos;
    const b = this.byte();
    this.pending--;
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if (b <= 0x8f) return this.map(b & 0x0f, depth);
    if (b <= 0x9f) return this.array(b & 0x0f, depth);
    if (b <= 0xbf) return this.str(b & 0x1f, at);
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.bin(this.uint(1));
      case 0xc5:
        return this.bin(this.uint(2));
      case 0xc6:
        return this.bin(this.uint(4));
      case 0xc7:
        return this.ext(this.uint(1));
      case 0xc8:
        return this.ext(this.uint(2));
      case 0xc9:
        return this.ext(this.uint(4));
      case 0xca:
        return this.view.getFloat32(this.take(4));
      case 0xcb:
        return this.view.getFloat64(this.take(8));
      case 0xcc:
        return this.uint(1);
      case 0xcd:
        return this.uint(2);
      case 0xce:
        return this.uint(4);
      case 0xcf:
        return this.view.getBigUint64(this.take(8));
      case 0xd0:
        return this.view.getInt8(this.take(1));
      case 0xd1:
        return this.view.getInt16(this.take(2));
      case 0xd2:
        return this.view.getInt32(this.take(4));
      case 0xd3:
        return this.view.getBigInt64(this.take(8));
      case 0xd4:
        return this.ext(1);
      case 0xd5:
        return this.ext(2);
      case 0xd6:
        return this.ext(4);
      case 0xd7:
        return this.ext(8);
      case 0xd8:
        return this.ext(16);
      case 0xd9:
        return this.str(this.uint(1), at);
      case 0xda:
        return this.str(this.uint(2), at);
      case 0xdb:
        return this.str(this.uint(4), at);
      case 0xdc:
        return this.array(this.uint(2), depth);
      case 0xdd:
        return this.array(this.uint(4), depth);
      case 0xde:
        return this.map(this.uint(2), depth);
      case 0xdf:
        return this.map(this.uint(4), depth);
      default:
        throw new MsgpackError(`Unrecognized type byte: 0x${b.toString(16)}`);
    }
  }

  /** Accounts for `count` more owed values, refusing a header that declares more than the bytes left can hold. */
  private owe(count: number): void {
    this.pending += count;
    if (this.pending > this.end - this.pos) {
      throw new MsgpackError(
        `it declares ${this.pending} more values than the ${Math.max(0, this.end - this.pos)} bytes left can hold (at byte ${this.pos})`,
      );
    }
  }

  private array(count: number, depth: number): unknown {
    if (count === 0) return [];
    this.owe(count);
    if (depth === PACKED_DEPTH) {
      const packed = this.lists.read(this.bytes, this.pos, this.end, count);
      if (packed !== null) {
        this.pos = this.lists.after;
        this.pending -= count;
        return packed;
      }
    }
    const out = new Array<unknown>(count);
    for (let i = 0; i < count; i++) out[i] = this.value(depth + 1);
    return out;
  }

  private map(count: number, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (count === 0) return out;
    this.owe(count * 2);
    for (let i = 0; i < count; i++) {
      const key = depth < MAX_DEPTH ? this.value(depth + 1) : this.deepKey();
      if (typeof key !== 'string' && typeof key !== 'number') {
        throw new MsgpackError(`The type of key must be string or number but ${typeof key}`);
      }
      if (key === '__proto__') throw new MsgpackError('The key __proto__ is not allowed');
      out[key] = this.value(depth + 1);
    }
    return out;
  }

  /**
   * A key of a map at the deepest level read: a scalar is read (skipping it would make it nil and refuse the map); a
   * container is refused at once, as a key must be a string or a number (reading it would recurse without end).
   */
  private deepKey(): unknown {
    if (this.pos >= this.end) return this.value(MAX_DEPTH); // reports the truncation
    const b = this.bytes[this.pos];
    if ((b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf)) {
      throw new MsgpackError('The type of key must be string or number but object');
    }
    return this.value(MAX_DEPTH);
  }

  /** A string of `length` bytes whose header is at `header`. */
  private str(length: number, header: number): string {
    const from = this.take(length);
    const to = from + length;
    const b = this.bytes;
    // Short ASCII strings repeat in every event (tags, map keys, tiers, LoRA names): a cache slot per length and a
    // few sampled bytes; a hit is the same bytes as an ASCII string read before, so it needs no UTF-8 check either.
    let slot = -1;
    if (length > 0 && length <= CACHED_MAX) {
      slot = (length ^ (b[from] << 1) ^ (b[to - 1] << 3) ^ (b[from + (length >> 1)] << 5)) & CACHE_MASK;
      const known = this.cacheBytes[slot];
      if (known !== undefined && known.length === length) {
        let i = 0;
        while (i < length && known[i] === b[from + i]) i++;
        if (i === length) return this.cache[slot] as string;
      }
    }
    for (let i = from; i < to; i++) {
      if (b[i] >= 0x80) {
        if (!isUtf8(b.subarray(from, to)))
          throw new MsgpackError(`it has a string that is not valid UTF-8 (at byte ${header})`);
        return utf8Slice.call(b, from, to);
      }
    }
    const text = latin1Slice.call(b, from, to);
    if (slot >= 0) {
      this.cache[slot] = text;
      // A copy (Buffer's slice() would be a view): the cache must neither keep the payload alive nor see it change.
      this.cacheBytes[slot] = Uint8Array.prototype.slice.call(b, from, to);
    }
    return text;
  }

  private bin(length: number): Uint8Array {
    const from = this.take(length);
    return new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + from, length);
  }

  private ext(length: number): WireExt | Date {
    const type = this.view.getInt8(this.take(1));
    const from = this.take(length);
    const data = new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + from, length);
    if (type !== -1) return new WireExt(type, data);
    const date = timestamp(this.view, from, length);
    if (date === null) throw new MsgpackError(`Unrecognized data size for timestamp (expected 4, 8, or 12): ${length}`);
    return date;
  }

  /** Skips one value (and all it holds) without recursion, checked as decoding it would but for map key types. */
  private skip(): void {
    const target = this.pending - 1;
    do {
      const b = this.byte();
      this.pending--;
      if (b <= 0x7f || b >= 0xe0) continue;
      if (b <= 0x8f) this.owe((b & 0x0f) * 2);
      else if (b <= 0x9f) this.owe(b & 0x0f);
      else if (b <= 0xbf) this.str(b & 0x1f, this.pos - 1);
      else if (b === 0xdc || b === 0xdd) this.owe(this.uint(b === 0xdc ? 2 : 4));
      else if (b === 0xde || b === 0xdf) this.owe(this.uint(b === 0xde ? 2 : 4) * 2);
      else {
        // A scalar: decode it where it is (no container: no recursion).
        this.pos--;
        this.pending++;
        this.value(0);
      }
    } while (this.pending > target);
  }

  private byte(): number {
    if (this.pos >= this.end) throw new MsgpackError(`Insufficient data: a value was expected at byte ${this.pos}`);
    return this.bytes[this.pos++];
  }

  /** Advances over `n` bytes and returns where they start. */
  private take(n: number): number {
    const at = this.pos;
    if (n > this.end - at)
      throw new MsgpackError(`Insufficient data: ${n} bytes expected at byte ${at}, ${this.end - at} left`);
    this.pos = at + n;
    return at;
  }

  /** A big-endian unsigned int of 1, 2 or 4 bytes. */
  private uint(n: 1 | 2 | 4): number {
    const at = this.take(n);
    const b = this.bytes;
    if (n === 1) return b[at];
    if (n === 2) return (b[at] << 8) | b[at + 1];
    return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
  }
}

/** The msgpack timestamp extension (−1): 32-bit seconds; 30-bit ns + 34-bit seconds; 32-bit ns + int64 seconds. */
function timestamp(view: DataView, at: number, length: number): Date | null {
  let sec: number;
  let nsec: number;
  if (length === 4) {
    sec = view.getUint32(at);
    nsec = 0;
  } else if (length === 8) {
    const hi = view.getUint32(at);
    nsec = hi >>> 2;
    sec = (hi & 0x3) * 0x100000000 + view.getUint32(at + 4);
  } else if (length === 12) {
    nsec = view.getUint32(at);
    sec = Number(view.getBigInt64(at + 4));
  } else return null;
  return new Date(sec * 1000 + nsec / 1e6);
}

const EMPTY = Buffer.alloc(0);
const EMPTY_VIEW = new DataView(new ArrayBuffer(0));

const reader = new Reader();

/** Decodes one msgpack value that must span the whole payload. Throws MsgpackError. */
export function readMsgpack(payload: Uint8Array): unknown {
  return reader.decode(payload);
}
