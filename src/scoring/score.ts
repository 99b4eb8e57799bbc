import { SPECULATIVE_BIT, type TierRegistry } from '../index/tiers.js';
import type { PrefixMatch } from '../index/types.js';
import { bestTierId, type TierWeights } from './tier-weights.js';

/** One candidate's prefix-cache score (spec/block-keys.md, "Scoring"). */
export interface CandidateScore {
  endpoint: string;
  /** Consecutive blocks from block 0 the endpoint holds (unweighted). */
  matchedBlocks: number;
  /** Sum over matched blocks of the best tier weight the endpoint has for each. */
  weighted: number;
  /** weighted / totalBlocks, in [0, 1]; 0 when the prompt has no full block. */
  normalized: number;
  /** Matched blocks by the tier that gave each its weight. */
  blocksByTier: Record<string, number>;
  /** Matched blocks held only speculatively. */
  speculativeBlocks: number;
}

export interface ScoreResult {
  /** Full blocks considered (the prompt's blocks, capped by maxBlocks). */
  totalBlocks: number;
  /** One per candidate, in the order given; without candidates, every matching endpoint, best first. */
  scores: CandidateScore[];
}

/**
 * Scores index prefix matches. Candidates with no match get an all-zero score rather than being absent; scores are
 * not min-max normalised across endpoints (that would turn a cold cluster into all 1.0).
 */
export function scoreMatches(
  matches: readonly PrefixMatch[],
  totalBlocks: number,
  weights: TierWeights,
  tiers: TierRegistry,
  candidates?: readonly string[],
): ScoreResult {
  const byEndpoint = new Map<string, CandidateScore>();
  for (const m of matches) byEndpoint.set(m.endpoint, scoreOne(m, totalBlocks, weights, tiers));
  if (candidates) {
    const seen = new Set<string>();
    const scores: CandidateScore[] = [];
    for (const c of candidates) {
      if (seen.has(c)) continue;
      seen.add(c);
      scores.push(byEndpoint.get(c) ?? zeroScore(c));
    }
    return { totalBlocks, scores };
  }
  const scores = [...byEndpoint.values()].sort(bestFirst);
  return { totalBlocks, scores };
}

function scoreOne(m: PrefixMatch, totalBlocks: number, weights: TierWeights, tiers: TierRegistry): CandidateScore {
  return scoreMasks(m.endpoint, m.tierMasks, 0, m.matchedBlocks, totalBlocks, weights.byTierId(tiers), tiers);
}

/** scoreMatches' order when no candidates are given. A module function: no comparator closure per call. */
export function bestFirst(a: CandidateScore, b: CandidateScore): number {
  return b.weighted - a.weighted || b.matchedBlocks - a.matchedBlocks || (a.endpoint < b.endpoint ? -1 : 1);
}

/**
 * One endpoint's score from its blocks' tier masks (`masks[from + i]` for block i < matchedBlocks), the weights by tier
 * id (TierWeights.byTierId). Shared by scoreMatches (a PrefixMatch's own masks) and scoreRows (a row of MatchRows).
 * Masks repeat along a prefix (same tiers block after block): each distinct mask is resolved once. Blocks are counted
 * per run of equal masks and added to their tier when the run ends (one property update per run, not per block); the
 * weights are still summed block by block, so `weighted` is the same float as a per-block sum.
 */
export function scoreMasks(
  endpoint: string,
  masks: Uint32Array,
  from: number,
  matchedBlocks: number,
  totalBlocks: number,
  byId: Float64Array,
  tiers: TierRegistry,
): CandidateScore {
  const matched = Math.min(matchedBlocks, totalBlocks);
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
      const best = bestTierId(mask, byId);
      lastMask = mask;
      lastTier = best < 0 ? 'GPU' : tiers.name(best);
      lastWeight = best < 0 ? 0 : byId[best];
    }
    weighted += lastWeight;
    run++;
    if ((mask & SPECULATIVE_BIT) !== 0) speculative++;
  }
  if (run > 0) byTier[lastTier] = (byTier[lastTier] ?? 0) + run;
  return {
    endpoint,
    matchedBlocks: matched,
    weighted,
    normalized: totalBlocks > 0 ? Math.min(1, weighted / totalBlocks) : 0,
    blocksByTier: byTier,
    speculativeBlocks: speculative,
  };
}

/**
 * The blocksByTier of every score that matched nothing: one frozen object instead of a new one per candidate (issue
 * 16). Nothing writes to a score's blocksByTier; frozen, a writer would fail loudly rather than change them all.
 */
export const NO_BLOCKS_BY_TIER: Record<string, number> = Object.freeze({});

export function zeroScore(endpoint: string): CandidateScore {
  return {
    endpoint,
    matchedBlocks: 0,
    weighted: 0,
    normalized: 0,
    blocksByTier: NO_BLOCKS_BY_TIER,
    speculativeBlocks: 0,
  };
}
