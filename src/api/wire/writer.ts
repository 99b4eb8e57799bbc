/**
 * The protobuf writer of the ScoreResponse encoder: field sizes (computed first, for one exact buffer) and the
 * writes. Default values (0, "", false) are left out, as proto3 encoders do. Every size counts one tag byte: the
 * encoder's tags come from fields.ts's oneByteTags, which refuses a field number that would need more.
 */

export function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

export function uint64Size(v: bigint): number {
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

/** Size of a length-delimited field with a one-byte tag. */
export function lenFieldSize(bytes: number): number {
  return 1 + varintSize(bytes) + bytes;
}

/** uint32 fields take the value's low 32 bits, as protobufjs's `>>> 0` does. */
export function uint32FieldSize(v: number): number {
  v >>>= 0;
  return v === 0 ? 0 : 1 + varintSize(v);
}

export function stringFieldSize(s: string): number {
  return s.length === 0 ? 0 : lenFieldSize(Buffer.byteLength(s));
}

export function doubleFieldSize(v: number): number {
  return v === 0 && !Object.is(v, -0) ? 0 : 9;
}

export function boolFieldSize(v: boolean): number {
  return v ? 2 : 0;
}

export class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  /** The tag and length of a length-delimited field whose content follows. */
  lenHeader(tag: number, bytes: number): void {
    this.buf[this.pos++] = tag;
    this.varint(bytes);
  }

  varint(v: number): void {
    const buf = this.buf;
    while (v >= 0x80) {
      buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[this.pos++] = v;
  }

  uint64(v: bigint): void {
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  uint32Field(tag: number, v: number): void {
    v >>>= 0;
    if (v === 0) return;
    this.buf[this.pos++] = tag;
    this.varint(v);
  }

  doubleField(tag: number, v: number): void {
    if (v === 0 && !Object.is(v, -0)) return;
    this.buf[this.pos++] = tag;
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  boolField(tag: number, v: boolean): void {
    if (!v) return;
    this.buf[this.pos++] = tag;
    this.buf[this.pos++] = 1;
  }

  stringField(tag: number, s: string): void {
    if (s.length === 0) return;
    this.buf[this.pos++] = tag;
    const at = this.pos;
    // One byte of length is the common case; move the text if the length needs more.
    const written = this.buf.write(s, at + 1, 'utf8');
    const lengthBytes = varintSize(written);
    if (lengthBytes > 1) this.buf.copy(this.buf, at + lengthBytes, at + 1, at + 1 + written);
    this.varint(written);
    this.pos += written;
  }
}
