// Protobuf wire bytes written by hand for the codec tests, independent of the codecs under test.

/** A base-128 varint; `padTo` writes an over-long encoding (continuation bytes carrying zeros), which is valid. */
export function varint(v: bigint | number, padTo = 0): number[] {
  let x = BigInt(v);
  const out: number[] = [];
  do {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  } while (x > 0n);
  while (out.length < padTo) out.push(0x80);
  out[out.length - 1] &= 0x7f;
  return out;
}

/** A length-delimited field (wire type 2). */
export const len = (field: number, bytes: number[]) => [...varint((field << 3) | 2), ...varint(bytes.length), ...bytes];
