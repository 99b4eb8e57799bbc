/**
 * Small helpers of the span table (spans.ts): lists of span ids per key, kept without duplicates, and the two 32-bit
 * halves of a key joined back.
 */

/** Adds `id` to the key's list unless it is there. */
export function addOnce(links: Map<bigint, number[]>, key: bigint, id: number): void {
  const ids = links.get(key);
  if (!ids) links.set(key, [id]);
  else if (!ids.includes(id)) ids.push(id);
}

/** Removes `id` from the key's list; returns how many ids are left (−1 when the key had none). */
export function removeOnce(links: Map<bigint, number[]>, key: bigint, id: number): number {
  const ids = links.get(key);
  if (!ids) return -1;
  const at = ids.indexOf(id);
  if (at >= 0) ids.splice(at, 1);
  if (ids.length === 0) links.delete(key);
  return ids.length;
}

export function join(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}
