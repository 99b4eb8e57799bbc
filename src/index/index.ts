export type { Index, IndexStats, IndexWriter, LookupOptions, PrefixMatch } from './types.js';
export { MatchRows } from './match-rows.js';
export { CPU_TIER, GPU_TIER, MAX_TIERS, SPECULATIVE_BIT, TierRegistry, normaliseTier } from './tiers.js';
export {
  DEFAULT_MAX_ENTRIES,
  DEFAULT_SHARDS,
  MemoryIndex,
  type MemoryIndexOptions,
  type MemoryIndexStats,
} from './memory/memory-index.js';
export { EndpointRegistry, MAX_ENDPOINTS } from './memory/endpoint-registry.js';
export { RedisIndex } from './redis/redis-index.js';
export type { RedisIndexOptions, RedisIndexStats } from './redis/redis-options.js';
export { asUnavailable, IndexUnavailableError, UnsafeEvictionPolicyError } from './redis/errors.js';
export { KeySchema, type Placement } from './redis/key-schema.js';
export { EndpointLeases, type LeaseResult, type LeaseStatus } from './redis/leases.js';
export {
  EncoderResidency,
  RESIDENCY_COUNTER_FAMILIES,
  MAX_IDENTIFIER_LENGTH,
  type EncoderResidencyOptions,
  type ImageResidency,
  type ResidencyEvictionReason,
  type ResidencyRecorder,
} from './encoder-residency.js';
