import { DEFAULT_TIER_WEIGHT_TABLE, UNKNOWN_TIER_WEIGHT } from '../common/index.js';
import { SPECULATIVE_BIT, type TierRegistry } from '../index/tiers.js';

export { DEFAULT_TIER_WEIGHT_TABLE, UNKNOWN_TIER_WEIGHT };

/** Weight of a block held on a tier, by tier name (case-insensitive). Unlisted tiers weigh `unknown`. */
export interface TierWeightConfig {
  weights: Readonly<Record<string, number>>;
  /** Weight of a tier not listed (default UNKNOWN_TIER_WEIGHT). */
  unknown?: number;
}

export const DEFAULT_TIER_WEIGHTS: TierWeightConfig = {
  weights: DEFAULT_TIER_WEIGHT_TABLE,
  unknown: UNKNOWN_TIER_WEIGHT,
};

/** Tier weights resolved against the tier registry: a block's weight is the best weight among the tiers it is on. */
export class TierWeights {
  private readonly byName: Map<string, number>;
  private readonly unknown: number;
  /** byTierId's answer and the registry it was resolved against (tiers are only ever added, ids never change). */
  private resolved = new Float64Array(0);
  private resolvedFor: TierRegistry | null = null;

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

  /**
   * Weight by tier id in `tiers`, resolved once per registry and tier count: scoring reads a weight per distinct
   * mask, and resolving by name upper-cases the name each time.
   */
  byTierId(tiers: TierRegistry): Float64Array {
    if (this.resolvedFor !== tiers || this.resolved.length !== tiers.size) {
      const w = new Float64Array(tiers.size);
      for (let t = 0; t < w.length; t++) w[t] = this.weightOf(tiers.name(t));
      this.resolved = w;
      this.resolvedFor = tiers;
    }
    return this.resolved;
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

/**
 * The tier that gives a block with tier mask `mask` its weight: the first tier of the highest weight among the mask's
 * tiers (`byId`: TierWeights.byTierId), or -1 when the mask has none (a speculative-only entry, which counts as GPU).
 */
export function bestTierId(mask: number, byId: Float64Array): number {
  const bits = mask & ~SPECULATIVE_BIT;
  let best = -1;
  let bestWeight = -1;
  for (let t = 0; t < byId.length; t++) {
    if ((bits & (1 << t)) !== 0 && byId[t] > bestWeight) {
      bestWeight = byId[t];
      best = t;
    }
  }
  return best;
}
