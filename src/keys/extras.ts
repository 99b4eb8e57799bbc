import type { BlockExtra } from './block-hasher.js';

/** A multimodal item's placeholder range in the token sequence and the identifier folded into its blocks. */
export interface PlaceholderItem {
  identifier: string;
  offset: number;
  length: number;
}

/**
 * Per-block extra features for a request (spec/multimodal.md §5): block i gets the identifiers of every item whose
 * range [offset, offset+length) overlaps [i*B, (i+1)*B), sorted by offset; then, on block 0 only, the cache salt.
 * Returns null when no block has any feature (the common text-only case), so callers can skip extras entirely.
 */
export function blockExtras(
  items: readonly PlaceholderItem[],
  tokenCount: number,
  blockSize: number,
  cacheSalt?: string | null,
): BlockExtra[] | null {
  const blocks = Math.floor(tokenCount / blockSize);
  if (blocks === 0 || (items.length === 0 && !cacheSalt)) return null;
  const extras: (string[] | null)[] = new Array<string[] | null>(blocks).fill(null);
  const sorted = items.length > 1 ? [...items].sort((a, b) => a.offset - b.offset) : items;
  for (const item of sorted) {
    if (item.length <= 0) continue;
    const first = Math.max(0, Math.floor(item.offset / blockSize));
    const last = Math.min(blocks - 1, Math.floor((item.offset + item.length - 1) / blockSize));
    for (let b = first; b <= last; b++) (extras[b] ??= []).push(item.identifier);
  }
  if (cacheSalt) (extras[0] ??= []).push(cacheSalt);
  return extras;
}
