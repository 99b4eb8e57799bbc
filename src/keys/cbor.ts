/**
 * The small subset of canonical CBOR (RFC 8949 §4.2.1, core deterministic encoding) that request keys need:
 * unsigned ints (up to 64 bits), text strings, arrays, single-entry maps and null, always in shortest form.
 * Used on cold paths (root keys, extra features); the per-block hot path folds the same bytes straight into FNV.
 */

export const CBOR_NULL = 0xf6;
const MAJOR_UINT = 0;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;

const utf8 = new TextEncoder();

/** Growable byte sink for canonical CBOR. */
export class CborWriter {
  private buf: Uint8Array;
  private len = 0;

  constructor(initialCapacity = 64) {
    this.buf = new Uint8Array(initialCapacity);
  }

  get length(): number {
    return this.len;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }

  reset(): this {
    this.len = 0;
    return this;
  }

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(b: number): this {
    this.ensure(1);
    this.buf[this.len++] = b;
    return this;
  }

  /** Major-type head with an argument of up to 64 bits, shortest form. */
  head(major: number, value: number | bigint): this {
    const mt = major << 5;
    if (typeof value === 'bigint') {
      if (value < 0n || value > 0xffffffffffffffffn) throw new RangeError(`CBOR argument out of range: ${value}`);
      if (value <= 0xffffffffn) return this.head(major, Number(value));
      this.ensure(9);
      this.buf[this.len++] = mt | 27;
      for (let shift = 56n; shift >= 0n; shift -= 8n) this.buf[this.len++] = Number((value >> shift) & 0xffn);
      return this;
    }
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new RangeError(`CBOR argument must be a uint32 number or a bigint, got ${value}`);
    }
    this.ensure(5);
    const b = this.buf;
    if (value < 24) {
      b[this.len++] = mt | value;
    } else if (value < 0x100) {
      b[this.len++] = mt | 24;
      b[this.len++] = value;
    } else if (value < 0x10000) {
      b[this.len++] = mt | 25;
      b[this.len++] = value >>> 8;
      b[this.len++] = value & 0xff;
    } else {
      b[this.len++] = mt | 26;
      b[this.len++] = value >>> 24;
      b[this.len++] = (value >>> 16) & 0xff;
      b[this.len++] = (value >>> 8) & 0xff;
      b[this.len++] = value & 0xff;
    }
    return this;
  }

  uint(value: number | bigint): this {
    return this.head(MAJOR_UINT, value);
  }

  text(s: string): this {
    const encoded = utf8.encode(s);
    this.head(MAJOR_TEXT, encoded.length);
    this.ensure(encoded.length);
    this.buf.set(encoded, this.len);
    this.len += encoded.length;
    return this;
  }

  arrayHead(count: number): this {
    return this.head(MAJOR_ARRAY, count);
  }

  mapHead(count: number): this {
    return this.head(MAJOR_MAP, count);
  }

  nil(): this {
    return this.byte(CBOR_NULL);
  }
}

/**
 * Canonical CBOR of one block's extra features: null, or an array of `{"Hash": id}` maps in the given order
 * (llm-d's multimodal extra-key struct). Returns the exact bytes that go after the token array.
 */
export function encodeBlockExtra(identifiers: readonly string[] | null | undefined, w = new CborWriter()): Uint8Array {
  w.reset();
  if (!identifiers || identifiers.length === 0) return w.nil().bytes().slice();
  w.arrayHead(identifiers.length);
  for (const id of identifiers) w.mapHead(1).text('Hash').text(id);
  return w.bytes().slice();
}
