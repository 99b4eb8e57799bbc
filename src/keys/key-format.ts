/** Keys are uint64. At the edges they travel as decimal strings (JSON) or BigInt; inside, as BigUint64Array. */

const MAX_U64 = 0xffffffffffffffffn;

/** Parse a decimal (or 0x-hex) uint64 string or a bigint; throws a RangeError naming the problem. */
export function parseKey(value: string | bigint | number): bigint {
  let v: bigint;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new RangeError(`key ${value} is not a safe integer; pass it as a string`);
    v = BigInt(value);
  } else {
    if (!/^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(value)) throw new RangeError(`key "${value}" is not a uint64`);
    v = BigInt(value);
  }
  if (v < 0n || v > MAX_U64) throw new RangeError(`key ${v} is outside uint64`);
  return v;
}

export function formatKey(key: bigint): string {
  return key.toString(10);
}
