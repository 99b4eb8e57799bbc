/** FNV-1a, 64-bit. Reference implementation with BigInt: for cold paths (root keys) and for tests. */

export const FNV64_OFFSET = 0xcbf29ce484222325n;
export const FNV64_PRIME = 0x100000001b3n;
const MASK64 = 0xffffffffffffffffn;

export function fnv64a(bytes: Uint8Array, seed: bigint = FNV64_OFFSET): bigint {
  let h = seed;
  for (let i = 0; i < bytes.length; i++) {
    h = ((h ^ BigInt(bytes[i])) * FNV64_PRIME) & MASK64;
  }
  return h;
}
