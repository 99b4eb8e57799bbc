/**
 * scoreMatches (score.ts) over the rows of `Index.lookupRows` (index/match-rows.ts): the same scores, value for value
 * (test/unit/scoring/score-rows.test.ts), without the per-call Map, Set, PrefixMatch objects and closures, and with
 * the tier weights read by tier id (TierWeights.byTierId) instead of by name.
 */

import type { MatchRows } from '../index/match-rows.js';
import type { TierRegistry } from '../index/tiers.js';
import { bestFirst, scoreMasks, zeroScore, type CandidateScore, type ScoreResult } from './score.js';
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
      if (rows.matched[r] > 0)
        scores.push(
          scoreMasks(rows.endpoints[r], rows.masks, r * rows.stride, rows.matched[r], totalBlocks, byId, tiers),
        );
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
      scores.push(
        scoreMasks(rows.endpoints[r], rows.masks, r * rows.stride, rows.matched[r], totalBlocks, byId, tiers),
      );
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
