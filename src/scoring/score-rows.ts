/**
 * scoreMatches (score.ts) over the rows of `Index.lookupRows` (index/match-rows.ts): the same scores, value for value
 * (test/unit/scoring/score-rows.test.ts), without the per-call Map, Set, PrefixMatch objects and closures, and with
 * the tier weights read by tier id (TierWeights.byTierId) instead of by name.
 */

import type { MatchRows } from '../index/match-rows.js';
import { SPECULATIVE_BIT, type TierRegistry } from '../index/tiers.js';
import { NO_BLOCKS_BY_TIER, zeroScore, type CandidateScore, type ScoreResult } from './score.js';
import type { TierWeights } from './tier-weights.js';

/** Rows already emitted (a candidate repeated in the request is scored once, as scoreMatches does). */
let emitted = new Uint8Array(16);

export function scoreRows(
  rows: MatchRows,
  totalBlocks: number,
  weights: TierWeights,
  tiers: TierRegistry,
  candidates?: readonly string[],
): ScoreResult {
  const byId = weights.byTierId(tiers);
  const scores: CandidateScore[] = [];
  if (candidates === undefined) {
    for (let r = 0; r < rows.count; r++) {
      if (rows.matched[r] > 0) scores.push(scoreRow(rows, r, totalBlocks, byId, tiers));
    }
    scores.sort(bestFirst);
    return { totalBlocks, scores };
  }
  if (emitted.length < rows.count) emitted = new Uint8Array(rows.count * 2);
  emitted.fill(0, 0, rows.count);
  const candidateRow = rows.candidateRow;
  const known = rows.candidateCount === candidates.length;
  // Names the index does not know have no row to mark: a Set dedups them, made only when a second one shows up.
  let firstUnknown: string | null = null;
  let unknownSeen: Set<string> | null = null;
  for (let i = 0; i < candidates.length; i++) {
    const r = known ? candidateRow[i] : -1;
    if (r >= 0) {
      if (emitted[r] !== 0) continue;
      emitted[r] = 1;
      scores.push(scoreRow(rows, r, totalBlocks, byId, tiers));
      continue;
    }
    const c = candidates[i];
    if (firstUnknown === null) firstUnknown = c;
    else {
      if (c === firstUnknown) continue;
      unknownSeen ??= new Set([firstUnknown]);
      if (unknownSeen.has(c)) continue;
      unknownSeen.add(c);
    }
    scores.push(zeroScore(c));
  }
  return { totalBlocks, scores };
}

/** scoreMatches' order when no candidates are given. A module function: no comparator closure per call. */
function bestFirst(a: CandidateScore, b: CandidateScore): number {
  return b.weighted - a.weighted || b.matchedBlocks - a.matchedBlocks || (a.endpoint < b.endpoint ? -1 : 1);
}

/** score.ts's scoreOne over one row; the weights are summed block by block in the same order (same floats). */
function scoreRow(
  rows: MatchRows,
  r: number,
  totalBlocks: number,
  byId: Float64Array,
  tiers: TierRegistry,
): CandidateScore {
  const matched = Math.min(rows.matched[r], totalBlocks);
  const masks = rows.masks;
  const from = r * rows.stride;
  let weighted = 0;
  let speculative = 0;
  const byTier: Record<string, number> = matched > 0 ? {} : NO_BLOCKS_BY_TIER;
  let lastMask = -1;
  let lastTier = '';
  let lastWeight = 0;
  let run = 0;
  for (let i = 0; i < matched; i++) {
    const mask = masks[from + i];
    if (mask !== lastMask) {
      if (run > 0) byTier[lastTier] = (byTier[lastTier] ?? 0) + run;
      run = 0;
      // TierWeights.best: the first tier of the highest weight among the mask's tiers; none → GPU, weight 0.
      const bits = mask & ~SPECULATIVE_BIT;
      let bestTier = -1;
      let bestWeight = -1;
      for (let t = 0; t < byId.length; t++) {
        if ((bits & (1 << t)) !== 0 && byId[t] > bestWeight) {
          bestWeight = byId[t];
          bestTier = t;
        }
      }
      lastMask = mask;
      lastTier = bestTier < 0 ? 'GPU' : tiers.name(bestTier);
      lastWeight = bestWeight < 0 ? 0 : bestWeight;
    }
    weighted += lastWeight;
    run++;
    if ((mask & SPECULATIVE_BIT) !== 0) speculative++;
  }
  if (run > 0) byTier[lastTier] = (byTier[lastTier] ?? 0) + run;
  return {
    endpoint: rows.endpoints[r],
    matchedBlocks: matched,
    weighted,
    normalized: totalBlocks > 0 ? Math.min(1, weighted / totalBlocks) : 0,
    blocksByTier: byTier,
    speculativeBlocks: speculative,
  };
}
