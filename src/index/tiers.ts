/**
 * Storage tiers ("medium" on the wire) as small integers, so an index entry stores one byte and a block's tiers
 * fit in a bitmask. Names are upper-cased; nil on the wire is GPU. Unknown tiers are interned on first sight.
 */

export const GPU_TIER = 0;
export const CPU_TIER = 1;
/** Bit set in a block's tier mask when the endpoint holds that block only speculatively. */
export const SPECULATIVE_BIT = 0x80000000;
export const MAX_TIERS = 30;

const KNOWN = ['GPU', 'CPU', 'CPU_PINNED', 'DISK', 'FS', 'OBJ', 'STORAGE', 'EXTERNAL'] as const;

export class TierRegistry {
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [];

  constructor() {
    for (const name of KNOWN) this.intern(name);
  }

  /** Id of a tier name; interns new names. Throws when more than MAX_TIERS distinct tiers are seen. */
  intern(name: string): number {
    // Names arrive already upper-case almost always: try them as they are before normalising.
    const exact = this.ids.get(name);
    if (exact !== undefined) return exact;
    const key = normaliseTier(name);
    let id = this.ids.get(key);
    if (id === undefined) {
      if (this.names.length >= MAX_TIERS) throw new RangeError(`too many distinct storage tiers (max ${MAX_TIERS})`);
      id = this.names.length;
      this.ids.set(key, id);
      this.names.push(key);
    }
    return id;
  }

  /** Id of a known tier, or undefined (never interns). */
  find(name: string): number | undefined {
    return this.ids.get(name) ?? this.ids.get(normaliseTier(name));
  }

  name(id: number): string {
    const n = this.names[id];
    if (n === undefined) throw new RangeError(`unknown tier id ${id}`);
    return n;
  }

  get size(): number {
    return this.names.length;
  }

  all(): readonly string[] {
    return this.names;
  }
}

export function normaliseTier(name: string | null | undefined): string {
  return name ? name.toUpperCase() : 'GPU';
}
