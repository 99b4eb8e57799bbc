export { Scorer, type ScoreOptions } from './scorer.js';
export { scoreMatches, type CandidateScore, type ScoreResult } from './score.js';
export { TierWeights, DEFAULT_TIER_WEIGHTS, type TierWeightConfig } from './tier-weights.js';
