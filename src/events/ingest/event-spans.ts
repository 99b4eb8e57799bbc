import type { EndpointState } from './endpoint-state.js';

/** Where an event's blocks lie in its combined token sequence (the parent's leftover tokens, then the event's). */
export interface EventLayout {
  /** Leftover tokens carried from the parent, before the event's own. */
  carried: number;
  engineBlocks: number;
  engineBlockSize: number;
  /** Canonical block size B. */
  blockSize: number;
  /** Complete canonical blocks in the combined sequence. */
  canonical: number;
}

/**
 * Records the event's canonical blocks that no single engine block contains as spans (spans.ts). Their pieces: the
 * parent's carried pieces that overlap them (ChainLeftover.pieces; only block 0 can have any, a leftover being
 * shorter than B), then the event's engine blocks that overlap them. A span whose closer already closes one exists.
 * For each new span whose pieces are all held on some tiers right now, `indexed(mask, span)` is called after the span
 * was marked indexed on those tiers: the caller adds the request key there.
 */
export function defineSpans(
  state: EndpointState,
  carriedPieces: readonly number[],
  halves: Uint32Array,
  keyHalves: Uint32Array,
  layout: EventLayout,
  anchorLo: number,
  anchorHi: number,
  indexed: (mask: number, span: number) => void,
): void {
  const { carried, engineBlocks: n, engineBlockSize: eb, blockSize: B, canonical } = layout;
  const pieces = scratch;
  for (let k = 0; k < canonical; k++) {
    const s = k * B;
    const jFirst = s < carried ? 0 : Math.floor((s - carried) / eb);
    const jLast = Math.min(n - 1, Math.floor((s + B - 1 - carried) / eb));
    if (s >= carried && jFirst === jLast) continue; // inside one engine block: mapped directly
    pieces.length = 0;
    if (s < carried)
      for (let i = 0; i < carriedPieces.length; i += 4)
        if (carriedPieces[i + 3] > s) pieces.push(carriedPieces[i], carriedPieces[i + 1]);
    for (let j = jFirst; j <= jLast; j++) pieces.push(halves[2 * j], halves[2 * j + 1]);
    if (state.spans.closedBy(state.map, pieces[pieces.length - 2], pieces[pieces.length - 1]) >= 0) continue;
    const id = state.spans.create(
      state.map,
      keyHalves[2 * k],
      keyHalves[2 * k + 1],
      anchorLo,
      anchorHi,
      pieces,
      pieces.length / 2,
    );
    const mask = state.spans.heldEverywhere(state.map, id);
    state.spans.setIndexed(id, mask);
    if (mask !== 0) indexed(mask, id);
  }
}

/** Pieces of the span being defined (reused). */
const scratch: number[] = [];

/**
 * The engine blocks overlapping the tokens after the last full canonical block (from `leftoverStart`), as
 * ChainLeftover.pieces [lo, hi, start, end, …] relative to that token: the parent's carried pieces (when no canonical
 * block completed, so the leftover still starts where the parent's did) and this event's overlapping blocks.
 */
export function leftoverPieces(
  carriedPieces: readonly number[],
  carried: number,
  halves: Uint32Array,
  n: number,
  eb: number,
  leftoverStart: number,
): number[] {
  const out: number[] = [];
  if (leftoverStart === 0) out.push(...carriedPieces);
  for (let j = 0; j < n; j++) {
    const start = carried + j * eb;
    if (start + eb > leftoverStart)
      out.push(halves[2 * j], halves[2 * j + 1], start - leftoverStart, start + eb - leftoverStart);
  }
  return out;
}
