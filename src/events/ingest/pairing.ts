/**
 * Engine blocks ↔ canonical blocks when their sizes differ (spec/block-keys.md, step 4), by token range: engine block
 * j maps to every complete canonical block its tokens overlap. Without carried tokens and with sizes that divide
 * each other this is exactly the spec's E[i·|E|/n] ↔ R[i·|R|/n] (1:1, many:1, 1:many). It also stays right when the
 * event starts with `carried` leftover tokens of its parent, where the index formula would shift every pair, and for
 * uneven ratios, where an engine block straddling two canonical blocks maps to both.
 */
export function pairEngineToRequest(
  engineBlocks: number,
  engineBlockSize: number,
  carried: number,
  requestKeys: BigUint64Array,
  blockSize: number,
): BigUint64Array[] {
  const out: BigUint64Array[] = new Array<BigUint64Array>(engineBlocks);
  const complete = requestKeys.length;
  for (let j = 0; j < engineBlocks; j++) {
    const start = carried + j * engineBlockSize;
    const first = Math.floor(start / blockSize);
    const last = Math.min(complete - 1, Math.floor((start + engineBlockSize - 1) / blockSize));
    out[j] = first > last ? EMPTY : requestKeys.subarray(first, last + 1);
  }
  return out;
}

const EMPTY = new BigUint64Array(0);
