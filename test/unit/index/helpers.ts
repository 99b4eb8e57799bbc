import type { PrefixMatch } from '../../../src/index/index.js';

/** A BigUint64Array from numbers or bigints. */
export function keys(...values: (number | bigint)[]): BigUint64Array {
  return BigUint64Array.from(values.map((v) => BigInt(v)));
}

/** Lookup results as plain data: [endpoint, matchedBlocks, tierMasks[]]. */
export function plain(matches: PrefixMatch[]): [string, number, number[]][] {
  return matches.map((m) => [m.endpoint, m.matchedBlocks, Array.from(m.tierMasks)]);
}
