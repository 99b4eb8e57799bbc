/**
 * The checked protobuf reader of the Score decoders: varints, length-delimited fields, doubles, tags and skipping of
 * unknown fields (groups included). Malformed input throws WireFormatError naming the field being read and the byte.
 */

import { isUtf8 } from 'node:buffer';
import { WIRE_END_GROUP, WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_START_GROUP, WIRE_VARINT } from './fields.js';
import { InvalidInputError } from '../../common/index.js';
import { wireNames } from './string-cache.js';

export class WireFormatError extends InvalidInputError {}

/** Thrown inside the fast decoder when the generic decoder must take over (never escapes the decoders). */
export const GENERIC = Symbol('generic decoder');

/** Reader over one buffer; `field` names what is being read, for error messages. */
export class Reader {
  pos = 0;
  field = 'request';
  /**
   * ≥ 0: `field` is a repeated field and this the element being read. Kept apart from `field` so that reading a list
   * (16 candidates a call) builds no name string unless an error needs one.
   */
  element = -1;

  constructor(
    readonly buf: Buffer,
    public end: number,
  ) {}

  fail(problem: string): never {
    const field = this.element < 0 ? this.field : `${this.field}[${this.element}]`;
    throw new WireFormatError(`${field}: ${problem} at byte ${this.pos}`);
  }

  /** A varint's low 32 bits (protobuf's uint32/bool reading; up to 10 bytes, the bits past 32 dropped). */
  varint32(): number {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    if (pos >= end) return this.fail('truncated varint');
    let b = buf[pos++];
    let value = b & 0x7f;
    if (b < 0x80) {
      this.pos = pos;
      return value;
    }
    for (let shift = 7; shift < 35; shift += 7) {
      if (pos >= end) return this.failAt(pos, 'truncated varint');
      b = buf[pos++];
      value |= (b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        return value >>> 0;
      }
    }
    // Bytes 6..10 carry bits 35..69: read and dropped.
    for (let i = 5; i < 10; i++) {
      if (pos >= end) return this.failAt(pos, 'truncated varint');
      if (buf[pos++] < 0x80) {
        this.pos = pos;
        return value >>> 0;
      }
    }
    return this.failAt(pos, 'varint longer than 10 bytes');
  }

  private failAt(pos: number, problem: string): never {
    this.pos = pos;
    return this.fail(problem);
  }

  /** The end of a length-delimited field that starts here (after reading its length). */
  lengthEnd(): number {
    const length = this.varint32();
    const end = this.pos + length;
    if (end > this.end)
      this.fail(`length ${length} runs past the end of the message (${this.end - this.pos} bytes left)`);
    return end;
  }

  string(): string {
    const end = this.lengthEnd();
    const s = end === this.pos ? '' : this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }

  /** A name (model, endpoint) that recurs call after call: the same decode, remembered by its bytes (string-cache.ts). */
  name(): string {
    const end = this.lengthEnd();
    const s = end === this.pos ? '' : wireNames.decode(this.buf, this.pos, end);
    this.pos = end;
    return s;
  }

  /**
   * A text field that must be UTF-8 as sent: decoding would turn bad bytes into U+FFFD and so render and hash
   * another prompt than the one the engine will refuse or see.
   */
  utf8String(): string {
    const start = this.pos;
    const end = this.lengthEnd();
    if (!isUtf8(this.buf.subarray(this.pos, end))) {
      this.pos = start;
      this.fail('is not valid UTF-8');
    }
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }

  double(): number {
    if (this.pos + 8 > this.end) this.fail('truncated double');
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  /** Reads a tag; returns field number × 8 + wire type, after checking both. */
  tag(): number {
    const tag = this.varint32();
    if (tag >>> 3 === 0) this.fail('field number 0');
    if ((tag & 7) > 5) this.fail(`invalid wire type ${tag & 7}`);
    return tag;
  }

  /** Skips one field of the given tag (an unknown field). */
  skip(tag: number): void {
    switch (tag & 7) {
      case WIRE_VARINT:
        this.varint32();
        return;
      case WIRE_FIXED64:
        this.advance(8);
        return;
      case WIRE_LEN:
        this.pos = this.lengthEnd();
        return;
      case WIRE_START_GROUP: {
        const field = tag >>> 3;
        for (;;) {
          if (this.pos >= this.end) this.fail(`unterminated group ${field}`);
          const inner = this.tag();
          if ((inner & 7) === WIRE_END_GROUP) {
            if (inner >>> 3 !== field) this.fail(`group ${field} closed by end group ${inner >>> 3}`);
            return;
          }
          this.skip(inner);
        }
      }
      case WIRE_END_GROUP:
        return this.fail(`end group ${tag >>> 3} without a start`);
      case WIRE_FIXED32:
        this.advance(4);
        return;
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) this.fail(`truncated ${n * 8}-bit field`);
    this.pos += n;
  }
}
