export { Scorer, type ScoreOptions } from './scorer.js';
export { scoreMatches, NO_BLOCKS_BY_TIER, zeroScore, type CandidateScore, type ScoreResult } from './score.js';
export { scoreRows } from './score-rows.js';
export {
  TierWeights,
  DEFAULT_TIER_WEIGHTS,
  DEFAULT_TIER_WEIGHT_TABLE,
  UNKNOWN_TIER_WEIGHT,
  type TierWeightConfig,
} from './tier-weights.js';
export {
  LoadScraper,
  ScrapeThread,
  SCRAPE_OUTCOMES,
  SCRAPE_COUNTER_FAMILIES,
  type ScrapeCounters,
  type LoadScraping,
  type LoadSource,
  type ScrapedLoad,
  type KnownEndpoint,
  type LoadScrapeStatus,
  type ScrapeOutcome,
} from './load/index.js';
