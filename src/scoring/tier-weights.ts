import { SPECULATIVE_BIT, type TierRegistry } from '../index/tiers.js';

/** Weight of a block held on a tier, by tier name (case-insensitive). Unlisted tiers weigh `unknown`. */
export interface TierWeightConfig {
  weights: Readonly<Record<string, number>>;
  /** Weight of a tier not listed (default UNKNOWN_TIER_WEIGHT). */
  unknown?: number;
}

/**
 * Default weights (docs/configuration.md): what reusing a block from the tier is worth against recomputing it.
 * - GPU 1.0, host memory 0.8 (`CPU`; SGLang's `CPU_PINNED` is the same tier). Dynamo's router credits host-pinned
 *   hits 0.75 and disk hits 0.25 (ai-dynamo/dynamo lib/kv-router/src/scheduling/selector.rs, `host_cache_hit_weight`,
 *   `disk_cache_hit_weight`) and routes vLLM's `STORAGE` medium to its disk tier (ai-dynamo/dynamo#11571): DISK,
 *   STORAGE and vLLM 0.26's FS 0.25; object stores (OBJ) and SGLang's shared `EXTERNAL` pool 0.2, as llm-d weighs
 *   `object_store` (llm-d/llm-d-router#2809).
 * - `*_REMOTE`: a block vLLM marks `locality: REMOTE` lives in storage this pod does not own (vllm-project/vllm#48281);
 *   every pod that mounts it could load it, so it says little about this pod: 0.1.
 * - Unknown tiers 0.1 (UNKNOWN_TIER_WEIGHT), not 1.0: an unknown tier's reuse cost is unknown, and crediting it like
 *   GPU misroutes. llm-d scores unconfigured tiers 0 (llm-d/llm-d-router#2809); we keep a small positive weight so a
 *   held block still ranks above none, below every known tier.
 */
export const DEFAULT_TIER_WEIGHT_TABLE: Readonly<Record<string, number>> = {
  GPU: 1.0,
  CPU: 0.8,
  CPU_PINNED: 0.8,
  DISK: 0.25,
  STORAGE: 0.25,
  FS: 0.25,
  OBJ: 0.2,
  EXTERNAL: 0.2,
  STORAGE_REMOTE: 0.1,
  FS_REMOTE: 0.1,
  OBJ_REMOTE: 0.1,
};

export const UNKNOWN_TIER_WEIGHT = 0.1;

export const DEFAULT_TIER_WEIGHTS: TierWeightConfig = { weights: DEFAULT_TIER_WEIGHT_TABLE, unknown: UNKNOWN_TIER_WEIGHT };

/** Tier weights resolved against the tier registry: a block's weight is the best weight among the tiers it is on. */
export class TierWeights {
  private readonly byName: Map<string, number>;
  private readonly unknown: number;

  constructor(config: TierWeightConfig = DEFAULT_TIER_WEIGHTS) {
    this.byName = new Map();
    for (const [name, w] of Object.entries(config.weights)) this.byName.set(name.toUpperCase(), checkWeight(name, w));
    this.unknown = checkWeight('unknown', config.unknown ?? UNKNOWN_TIER_WEIGHT);
  }

  /** A new set with `overrides` (e.g. per-request weights) applied on top. */
  with(overrides: Readonly<Record<string, number>> | undefined): TierWeights {
    if (!overrides || Object.keys(overrides).length === 0) return this;
    const weights: Record<string, number> = Object.fromEntries(this.byName);
    for (const [name, w] of Object.entries(overrides)) weights[name.toUpperCase()] = w;
    return new TierWeights({ weights, unknown: this.unknown });
  }

  weightOf(tierName: string): number {
    return this.byName.get(tierName.toUpperCase()) ?? this.unknown;
  }

  /** Weight and best tier of a block whose tier mask is given (speculative entries count as GPU). */
  best(mask: number, tiers: TierRegistry): { tier: number; weight: number } {
    let bestTier = -1;
    let bestWeight = -1;
    const bits = mask & ~SPECULATIVE_BIT;
    for (let t = 0; t < tiers.size; t++) {
      if ((bits & (1 << t)) === 0) continue;
      const w = this.weightOf(tiers.name(t));
      if (w > bestWeight) {
        bestWeight = w;
        bestTier = t;
      }
    }
    return { tier: bestTier, weight: bestWeight < 0 ? 0 : bestWeight };
  }

  toJSON(): Record<string, number> {
    return { ...Object.fromEntries(this.byName), '*': this.unknown };
  }
}

function checkWeight(name: string, w: number): number {
  if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) {
    throw new RangeError(`tier weight for "${name}" must be a finite number ≥ 0, got ${String(w)}`);
  }
  return w;
}
