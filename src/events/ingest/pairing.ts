/**
 * Engine blocks ↔ canonical blocks when their sizes differ (spec/block-keys.md, step 4), by token range: the engine
 * block covering tokens [start, start + engineBlockSize) maps to every complete canonical block its tokens overlap.
 * Without carried tokens and with sizes that divide each other this is exactly the spec's E[i·|E|/n] ↔ R[i·|R|/n]
 * (1:1, many:1, 1:many). It also stays right when the event starts with leftover tokens carried from its parent,
 * where the index formula would shift every pair, and for uneven ratios, where an engine block straddling two
 * canonical blocks maps to both.
 */

/** First canonical block an engine block starting at token `start` overlaps. */
export function pairedFirst(start: number, blockSize: number): number {
  return Math.floor(start / blockSize);
}

/** One past the last complete canonical block (of `complete`) that the engine block overlaps; ≥ pairedFirst. */
export function pairedEnd(start: number, engineBlockSize: number, blockSize: number, complete: number): number {
  const first = Math.floor(start / blockSize);
  return Math.max(first, Math.min(complete, Math.floor((start + engineBlockSize - 1) / blockSize) + 1));
}

/**
 * The canonical blocks that lie entirely inside one engine block map to that engine key directly (1:1, 1:many):
 * they are held exactly while that engine block is. A canonical block that shares its tokens with other engine
 * blocks is a span (spans.ts): held only while all of them are. These two give the contained range [first, end).
 */
export function containedFirst(start: number, blockSize: number): number {
  return Math.ceil(start / blockSize);
}

/** One past the last complete canonical block (of `complete`) inside the engine block; ≥ containedFirst. */
export function containedEnd(start: number, engineBlockSize: number, blockSize: number, complete: number): number {
  const first = Math.ceil(start / blockSize);
  return Math.max(first, Math.min(complete, Math.floor((start + engineBlockSize) / blockSize)));
}
