/**
 * Endpoint and tier ids shared by every replica through the registry in Redis (slot of tag "m"). Index entries store
 * small ids rather than names; ids are assigned once by the INTERN script and never reused, so each process caches
 * them without invalidation (until the Redis data itself is lost — see reset()).
 *
 * Tier ids 0–7 are the fixed known tiers of tiers.ts (every TierRegistry interns them first, in that order); other
 * tier names get global ids from 8 upward, which may differ from this process's local TierRegistry ids, so masks
 * are translated at the edge.
 */

import type { TierRegistry } from '../tiers.js';
import type { KeySchema } from './key-schema.js';

const KNOWN_TIERS = 8;
/** Unknown candidate names are looked up in Redis again at most this often. */
const NEGATIVE_TTL_MS = 1000;

export interface RegistryClient {
  hmget(key: string, ...fields: string[]): Promise<(string | null)[]>;
}

export class SharedIds {
  private readonly endpointIds = new Map<string, number>();
  private readonly endpointNames = new Map<number, string>();
  private readonly tierGlobal = new Map<string, number>();
  /** Global tier id → local tier id (ids ≥ 8 only). */
  private readonly tierLocal = new Map<number, number>();
  private readonly missing = new Map<string, number>();

  constructor(
    private readonly schema: KeySchema,
    private readonly tiers: TierRegistry,
  ) {}

  endpointId(name: string): number | undefined {
    return this.endpointIds.get(name);
  }

  endpointName(id: number): string | undefined {
    return this.endpointNames.get(id);
  }

  /** Global id of a tier name (already normalised), or undefined until registered. */
  tierId(name: string): number | undefined {
    const local = this.tiers.find(name);
    if (local !== undefined && local < KNOWN_TIERS) return local;
    return this.tierGlobal.get(name);
  }

  /** Endpoint names without a cached id. */
  unknownEndpoints(names: Iterable<string>): string[] {
    return [...new Set(names)].filter((e) => !this.endpointIds.has(e));
  }

  /** Tier names (normalised) without a global id yet. */
  unknownTiers(names: Iterable<string>): string[] {
    return [...new Set(names)].filter((t) => this.tierId(t) === undefined);
  }

  /** Records the ids the PREPARE script returned for these names (endpoints first, then tiers). */
  learn(endpoints: readonly string[], tierNames: readonly string[], ids: readonly (number | string)[]): void {
    endpoints.forEach((e, i) => this.learnEndpoint(e, Number(ids[i])));
    tierNames.forEach((t, i) => this.learnTier(t, Number(ids[endpoints.length + i])));
  }

  /**
   * Fetches ids of endpoint names other replicas may have registered (lookup candidates); names still unknown are
   * not asked again for NEGATIVE_TTL_MS.
   */
  async findEndpoints(client: RegistryClient, names: readonly string[], now: number): Promise<void> {
    const ask = names.filter((n) => !this.endpointIds.has(n) && !((this.missing.get(n) ?? -Infinity) > now));
    if (ask.length === 0) return;
    const ids = await client.hmget(this.schema.meta('eid'), ...ask);
    ask.forEach((n, i) => {
      const id = ids[i];
      if (id === null) this.missing.set(n, now + NEGATIVE_TTL_MS);
      else this.learnEndpoint(n, Number(id));
    });
    if (this.missing.size > 10_000) this.missing.clear();
  }

  /** Fetches the names of endpoint ids seen in lookup results (registered by other replicas). */
  async findEndpointNames(client: RegistryClient, ids: readonly number[]): Promise<void> {
    const ask = [...new Set(ids)].filter((id) => !this.endpointNames.has(id));
    if (ask.length === 0) return;
    const names = await client.hmget(this.schema.meta('ename'), ...ask.map(String));
    ask.forEach((id, i) => {
      const n = names[i];
      if (n !== null) this.learnEndpoint(n, id);
    });
  }

  /** Local tier id of a global one; undefined when the name is not known here yet. */
  localTier(globalId: number): number | undefined {
    return globalId < KNOWN_TIERS ? globalId : this.tierLocal.get(globalId);
  }

  /** Fetches and interns locally the names of global tier ids seen in lookup results. */
  async findTiers(client: RegistryClient, globalIds: readonly number[]): Promise<void> {
    const ask = [...new Set(globalIds)].filter((id) => this.localTier(id) === undefined);
    if (ask.length === 0) return;
    const names = await client.hmget(this.schema.meta('tname'), ...ask.map(String));
    ask.forEach((id, i) => {
      const n = names[i];
      if (n !== null) this.learnTier(n, id);
    });
  }

  /** Translates a mask of global tier bits to local ones (only bits ≥ 8 can differ). */
  toLocalMask(mask: number): number {
    if ((mask & 0x3fffff00) === 0) return mask;
    let out = mask & 0x800000ff;
    for (let t = KNOWN_TIERS; t < 30; t++) {
      if ((mask & (1 << t)) !== 0) {
        const local = this.localTier(t);
        if (local !== undefined) out |= 1 << local;
      }
    }
    return out >>> 0;
  }

  /** Forgets every cached id (the Redis data was lost, e.g. a restarted server without persistence). */
  reset(): void {
    this.endpointIds.clear();
    this.endpointNames.clear();
    this.tierGlobal.clear();
    this.tierLocal.clear();
    this.missing.clear();
  }

  private learnEndpoint(name: string, id: number): void {
    this.endpointIds.set(name, id);
    this.endpointNames.set(id, name);
    this.missing.delete(name);
  }

  private learnTier(name: string, id: number): void {
    this.tierGlobal.set(name, id);
    this.tierLocal.set(id, this.tiers.intern(name));
  }
}
