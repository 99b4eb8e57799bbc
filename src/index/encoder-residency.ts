/**
 * Encoder residency: which endpoints have processed which multimodal items (images), inferred from KV events.
 *
 * No engine publishes encoder-cache events, but vLLM's BlockStored carries each item's identifier in `extra_keys`:
 * a block stored with identifier X on endpoint P shows that P ran its encoder on X (or got its output). This is a
 * per-process structure fed by the events this process ingests (also with the Redis index backend: residency is per
 * replica). Per endpoint, an LRU of identifiers bounded by `cacheEntries` and aged out after `ttlMs`; overall at most
 * `maxEntries`, beyond which the endpoint with the most entries gives up its least recent one.
 *
 * Why an LRU per endpoint: vLLM's EncoderCacheManager (vllm/v1/core/encoder_cache_manager.py) keeps encoder outputs
 * by mm_hash and, when space is needed, evicts the oldest unreferenced ones first; its budget is counted in encoder
 * embeddings (`encoder_cache_size`, defaulting to the scheduler's encoder/token batch budget and never below the
 * largest item), so the number of items it holds depends on the model. `cacheEntries` counts items instead; see
 * docs/configuration.md ("Encoder residency") for choosing it.
 */

import type { CounterFamily } from '../common/index.js';

export type ResidencyEvictionReason = 'lru' | 'ttl' | 'endpoint_cleared';

export interface EncoderResidencyOptions {
  /** Identifiers remembered per endpoint (LRU beyond). */
  cacheEntries: number;
  /** Entries not seen again for this long are gone (0 = never aged out). */
  ttlMs: number;
  /** Entries over all endpoints; default cacheEntries × 256. */
  maxEntries?: number;
  /** Milliseconds since the epoch; default Date.now. */
  clock?: () => number;
}

/** Longest identifier kept: vLLM's are 64 hex characters (or a caller's uuid); the API refuses longer ones too. */
export const MAX_IDENTIFIER_LENGTH = 256;

/** One identifier on one endpoint: when it was last seen, and a global order for "most recent first". */
interface Seen {
  at: number;
  order: number;
}

/** Where other modules read residency (Score, LookupImages, later Select's cost term). */
export interface ImageResidency {
  /** How many of `identifiers` (each occurrence counts) `endpoint` has seen and not aged out. */
  imagesSeen(endpoint: string, identifiers: readonly string[]): number;
  /** Endpoints that have seen `identifier`, most recent first; only `candidates` when given. */
  endpointsOf(identifier: string, candidates?: readonly string[] | null): string[];
}

/** Encoder residency's counts on /metrics (registered by service/start-api.ts). */
export const RESIDENCY_COUNTER_FAMILIES: readonly CounterFamily<EncoderResidency>[] = [
  {
    name: 'encoder_residency_evictions_total',
    help: 'Encoder residency entries dropped, by reason (lru, ttl, endpoint_cleared)',
    label: 'reason',
    read: (r) => ({ ...r.evictions }),
  },
];

/** What ingest writes. */
export interface ResidencyRecorder {
  record(endpoint: string, identifiers: readonly string[]): void;
  clearEndpoint(endpoint: string): number;
}

export class EncoderResidency implements ImageResidency, ResidencyRecorder {
  /** Per endpoint: identifier → when seen. Map order is recency order (oldest first): a touch re-inserts. */
  private readonly endpoints = new Map<string, Map<string, Seen>>();
  private readonly cacheEntries: number;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly clock: () => number;
  private total = 0;
  private order = 0;
  /** Identifiers longer than MAX_IDENTIFIER_LENGTH, not kept. */
  skippedLong = 0;
  readonly evictions: Record<ResidencyEvictionReason, number> = { lru: 0, ttl: 0, endpoint_cleared: 0 };

  constructor(options: EncoderResidencyOptions) {
    if (!Number.isInteger(options.cacheEntries) || options.cacheEntries < 1)
      throw new RangeError(`cacheEntries must be ≥ 1, got ${options.cacheEntries}`);
    if (!(options.ttlMs >= 0)) throw new RangeError(`ttlMs must be ≥ 0, got ${options.ttlMs}`);
    this.cacheEntries = options.cacheEntries;
    this.ttlMs = options.ttlMs;
    this.maxEntries = options.maxEntries ?? options.cacheEntries * 256;
    if (!Number.isInteger(this.maxEntries) || this.maxEntries < 1)
      throw new RangeError(`maxEntries must be ≥ 1, got ${this.maxEntries}`);
    this.clock = options.clock ?? Date.now;
  }

  /** `endpoint` has just stored blocks carrying these identifiers: each becomes its most recent. */
  record(endpoint: string, identifiers: readonly string[]): void {
    if (identifiers.length === 0) return;
    const now = this.clock();
    let lru = this.endpoints.get(endpoint);
    for (const id of identifiers) {
      if (id.length === 0) continue;
      if (id.length > MAX_IDENTIFIER_LENGTH) {
        this.skippedLong++;
        continue;
      }
      if (!lru) this.endpoints.set(endpoint, (lru = new Map()));
      const seen = lru.get(id);
      if (seen) {
        lru.delete(id);
        seen.at = now;
        seen.order = ++this.order;
        lru.set(id, seen);
        continue;
      }
      lru.set(id, { at: now, order: ++this.order });
      this.total++;
      if (lru.size > this.cacheEntries) this.evictOldest(endpoint, lru, 'lru');
      if (this.total > this.maxEntries) this.evictFromLargest();
      // The overall bound may have emptied (and dropped) this endpoint's map: start a new one for the next identifier.
      if (lru.size === 0) lru = undefined;
    }
    if (lru) this.expire(endpoint, lru, now);
  }

  /** Drops everything an endpoint has seen (cleared, removed, stale, handed over); returns how many entries went. */
  clearEndpoint(endpoint: string): number {
    const lru = this.endpoints.get(endpoint);
    if (!lru) return 0;
    const n = lru.size;
    this.endpoints.delete(endpoint);
    this.total -= n;
    this.evictions.endpoint_cleared += n;
    return n;
  }

  imagesSeen(endpoint: string, identifiers: readonly string[]): number {
    const lru = this.endpoints.get(endpoint);
    if (!lru || identifiers.length === 0) return 0;
    const oldest = this.oldestLive();
    let n = 0;
    for (const id of identifiers) {
      const seen = lru.get(id);
      if (seen && seen.at > oldest) n++;
    }
    return n;
  }

  endpointsOf(identifier: string, candidates: readonly string[] | null = null): string[] {
    const oldest = this.oldestLive();
    const found: { endpoint: string; order: number }[] = [];
    const consider = (endpoint: string, lru: Map<string, Seen> | undefined) => {
      const seen = lru?.get(identifier);
      if (seen && seen.at > oldest) found.push({ endpoint, order: seen.order });
    };
    if (candidates && candidates.length > 0) {
      for (const c of new Set(candidates)) consider(c, this.endpoints.get(c));
    } else {
      for (const [endpoint, lru] of this.endpoints) consider(endpoint, lru);
    }
    found.sort((a, b) => b.order - a.order);
    return found.map((f) => f.endpoint);
  }

  /** Drops entries past the TTL on every endpoint (the service calls this on a timer; reads ignore them anyway). */
  sweep(): number {
    const before = this.evictions.ttl;
    const now = this.clock();
    for (const [endpoint, lru] of this.endpoints) this.expire(endpoint, lru, now);
    return this.evictions.ttl - before;
  }

  /** Resident entries (not yet swept) over all endpoints. */
  get entries(): number {
    return this.total;
  }

  /** Endpoints with at least one entry. */
  get endpointCount(): number {
    return this.endpoints.size;
  }

  get evictionsTotal(): number {
    return this.evictions.lru + this.evictions.ttl + this.evictions.endpoint_cleared;
  }

  /** Entries seen at or before this time have aged out. */
  private oldestLive(): number {
    return this.ttlMs > 0 ? this.clock() - this.ttlMs : -Infinity;
  }

  /** The oldest entries are first in the map: drop from the front while they are past the TTL. */
  private expire(endpoint: string, lru: Map<string, Seen>, now: number): void {
    if (this.ttlMs <= 0) return;
    const oldest = now - this.ttlMs;
    for (const [id, seen] of lru) {
      if (seen.at > oldest) break;
      lru.delete(id);
      this.total--;
      this.evictions.ttl++;
    }
    if (lru.size === 0) this.endpoints.delete(endpoint);
  }

  private evictOldest(endpoint: string, lru: Map<string, Seen>, reason: ResidencyEvictionReason): void {
    const first = lru.keys().next();
    if (first.done) return;
    lru.delete(first.value);
    this.total--;
    this.evictions[reason]++;
    if (lru.size === 0) this.endpoints.delete(endpoint);
  }

  /** Over the overall bound: the endpoint holding the most entries gives up its least recent one. */
  private evictFromLargest(): void {
    let largest: [string, Map<string, Seen>] | null = null;
    for (const entry of this.endpoints) if (!largest || entry[1].size > largest[1].size) largest = entry;
    if (largest) this.evictOldest(largest[0], largest[1], 'lru');
  }
}
