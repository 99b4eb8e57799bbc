/**
 * Prefix matches as rows of reused typed arrays: what `Index.lookupRows` fills instead of building one PrefixMatch
 * (object + tier-mask view) per endpoint per call. The scorer owns one and refills it every call (issue 16: the Score
 * path's per-call garbage), so its content is valid until the next lookup into it.
 */
export class MatchRows {
  /** Rows filled by the last lookup. */
  count = 0;
  /** Row → endpoint name (entries past `count` are stale). */
  readonly endpoints: string[] = [];
  /**
   * Row → consecutive blocks from block 0 the endpoint holds. With candidates, every candidate the index knows has a
   * row, matched 0 included; without, only endpoints holding block 0 have one.
   */
  matched = new Uint32Array(16);
  /** Row r's tier mask of block b (PrefixMatch.tierMasks) at r * stride + b, for b < matched[r]. */
  masks = new Uint32Array(1024);
  stride = 0;
  /**
   * Candidate i → its row (a repeated candidate: the row of its first occurrence), or -1 when the index does not know
   * the name. Filled for the first `candidateCount` candidates when the lookup had candidates.
   */
  candidateRow = new Int32Array(16);
  candidateCount = 0;

  /** Starts a lookup: no rows, every candidate unknown until the walk places it. */
  begin(candidates: number): void {
    this.count = 0;
    this.stride = 0;
    if (candidates > this.candidateRow.length)
      this.candidateRow = new Int32Array(grow(this.candidateRow.length, candidates));
    this.candidateRow.fill(-1, 0, candidates);
    this.candidateCount = candidates;
  }

  /** Room for `rows` rows of `stride` blocks. */
  reserve(rows: number, stride: number): void {
    if (rows > this.matched.length) this.matched = new Uint32Array(grow(this.matched.length, rows));
    if (rows * stride > this.masks.length) this.masks = new Uint32Array(grow(this.masks.length, rows * stride));
    this.stride = stride;
  }
}

function grow(from: number, to: number): number {
  let n = from;
  while (n < to) n *= 2;
  return n;
}
