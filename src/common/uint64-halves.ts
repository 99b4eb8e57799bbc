/** uint64 keys as uint32 halves: the reused buffer of hot paths and the conversions of rare ones. */

/**
 * uint64 keys as uint32 halves [lo0, hi0, lo1, hi1, …] in a reused buffer. Copying 8 bytes per key is cheaper than
 * creating a typed-array view per call on hot paths (events of one or two blocks are the common case).
 */
export class KeyHalves {
  private u64 = new BigUint64Array(64);
  private u32 = new Uint32Array(this.u64.buffer);

  /** The halves of `keys` in the first 2 × keys.length words; valid until the next load(). */
  load(keys: BigUint64Array): Uint32Array {
    if (keys.length > this.u64.length) {
      this.u64 = new BigUint64Array(Math.max(keys.length, this.u64.length * 2));
      this.u32 = new Uint32Array(this.u64.buffer);
    }
    this.u64.set(keys);
    return this.u32;
  }

  /** The halves of one key in words 0 and 1 (no bigint arithmetic, so nothing allocated); valid until the next load. */
  loadOne(key: bigint): Uint32Array {
    this.u64[0] = key;
    return this.u32;
  }
}

/** The low 32 bits of a uint64 key. */
export function lo32(key: bigint): number {
  return Number(key & 0xffffffffn);
}

/** The high 32 bits of a uint64 key. */
export function hi32(key: bigint): number {
  return Number(key >> 32n);
}

/** A uint64 key from its uint32 halves (allocates a bigint: rare paths only). */
export function fromHalves(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}
