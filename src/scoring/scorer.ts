import type { TierRegistry } from '../index/tiers.js';
import type { Index } from '../index/types.js';
import { scoreMatches, type ScoreResult } from './score.js';
import { TierWeights } from './tier-weights.js';

export interface ScoreOptions {
  candidates?: readonly string[];
  /** Per-request tier weights, on top of the configured ones. */
  tierWeights?: Readonly<Record<string, number>>;
  /** Consider at most this many blocks (0 or absent = all). */
  maxBlocks?: number;
}

/** Longest-prefix scoring of request keys against an index. */
export class Scorer {
  constructor(
    private readonly index: Index,
    private readonly tiers: TierRegistry,
    private readonly weights: TierWeights = new TierWeights(),
  ) {}

  async score(keys: BigUint64Array, options: ScoreOptions = {}): Promise<ScoreResult> {
    const maxBlocks = options.maxBlocks && options.maxBlocks > 0 ? options.maxBlocks : keys.length;
    const totalBlocks = Math.min(keys.length, maxBlocks);
    const weights = this.weights.with(options.tierWeights);
    if (totalBlocks === 0 || (options.candidates && options.candidates.length === 0)) {
      return scoreMatches([], totalBlocks, weights, this.tiers, options.candidates);
    }
    const matches = await this.index.lookup(keys, { candidates: options.candidates, maxBlocks: totalBlocks });
    return scoreMatches(matches, totalBlocks, weights, this.tiers, options.candidates);
  }
}
