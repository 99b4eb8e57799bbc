/**
 * Engine blocks ↔ canonical blocks when their sizes differ (spec/block-keys.md, step 4): with n = max(|E|, |R|),
 * E[i·|E|/n] ↔ R[i·|R|/n] for i in 0..n−1 — 1:1, many:1 and 1:many alike. Returns each engine block's request keys.
 */
export function pairEngineToRequest(engineBlocks: number, requestKeys: BigUint64Array): BigUint64Array[] {
  const e = engineBlocks;
  const r = requestKeys.length;
  const out: BigUint64Array[] = new Array<BigUint64Array>(e);
  if (r === 0) {
    out.fill(EMPTY);
    return out;
  }
  if (e === r) {
    for (let j = 0; j < e; j++) out[j] = requestKeys.subarray(j, j + 1);
    return out;
  }
  const n = Math.max(e, r);
  // For each engine block, the range [first, last] of request indices paired with it (always contiguous).
  const first = new Int32Array(e).fill(-1);
  const last = new Int32Array(e).fill(-1);
  for (let i = 0; i < n; i++) {
    const ej = Math.floor((i * e) / n);
    const ri = Math.floor((i * r) / n);
    if (first[ej] < 0) first[ej] = ri;
    last[ej] = ri;
  }
  for (let j = 0; j < e; j++) out[j] = first[j] < 0 ? EMPTY : requestKeys.subarray(first[j], last[j] + 1);
  return out;
}

const EMPTY = new BigUint64Array(0);
