/**
 * The sharded, memory-lean in-memory Index. Storage (see the modules beside this one): request keys live in sharded
 * open-addressing tables of Uint32Array slots, entries in a chunked pool of 7-word structs, each endpoint's entries in
 * a recency-ordered linked list, and speculative expiry times beside them. About 50 bytes per resident entry.
 *
 * Bounded by maxEntries. Eviction policy: before a NEW entry would exceed the bound, evict the oldest (least recently
 * stored) entry of the endpoint that currently holds the most entries (ties: lowest endpoint id) — see entry-store.ts.
 *
 * Semantics beyond the Index contract:
 * - remove() never touches speculative entries (a remove for a key held only speculatively counts as unknown).
 * - Speculative entries count as tier GPU in endpointEntries() and stats().entries.
 * - release() counts only entries that had not expired yet; expired ones are reclaimed either way.
 * - Lookup results are sorted by matchedBlocks, longest first (ties: candidate order, else endpoint name).
 * - The clock is read once per call (never per key); expired speculative entries are swept a batch at a time from
 *   add/reserve, and fully by sweepExpired() and the stats calls.
 */

import { TierRegistry } from '../tiers.js';
import type { MatchRows } from '../match-rows.js';
import type { Index, IndexStats, LookupOptions, PrefixMatch } from '../types.js';
import { KeyHalves } from '../../common/index.js';
import { EndpointRegistry } from './endpoint-registry.js';
import { EntryStore } from './entry-store.js';
import { PrefixWalker } from './prefix-walker.js';
import { checkEndpoint, checkKeys, checkLookupOptions, checkTier, checkTtl } from './validate.js';

export interface MemoryIndexOptions {
  /** Bound on resident entries (speculative included). Default 50,000,000. */
  maxEntries?: number;
  /** Key-table shards, a power of two. Default 64. */
  shards?: number;
  tiers?: TierRegistry;
  /** Milliseconds since the epoch; default Date.now. */
  clock?: () => number;
}

export interface MemoryIndexStats extends IndexStats {
  /** remove() calls' keys for which the (key, endpoint, tier) entry did not exist. */
  removesOfUnknown: number;
  /** Speculative entries reclaimed after expiring. */
  expiredSpeculative: number;
}

export const DEFAULT_MAX_ENTRIES = 50_000_000;
export const DEFAULT_SHARDS = 64;
/** Entry indices are 32-bit and the key table's hash bits must not run out. */
const MAX_ENTRIES_LIMIT = 2 ** 30;
/** Expired entries reclaimed per add/reserve call at most, so writes stay short. */
const SWEEP_BATCH = 4096;
/** Keys whose key-table slots add() and remove() warm up together (see add). */
const WARM_BATCH = 16;

export class MemoryIndex implements Index {
  readonly backend = 'memory' as const;
  readonly tiers: TierRegistry;
  readonly endpoints = new EndpointRegistry();
  private readonly halves = new KeyHalves();
  /** What KeyTable.warm() read, kept so that its reads are not optimised away. */
  private warmMix = 0;
  private readonly clock: () => number;
  private readonly store: EntryStore;
  private readonly walker: PrefixWalker;
  private readonly onExpire = (e: number): void => this.store.drop(e);
  private removesOfUnknown = 0;
  private expired = 0;
  private closed = false;

  constructor(options: MemoryIndexOptions = {}) {
    const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > MAX_ENTRIES_LIMIT) {
      throw new RangeError(`maxEntries must be an integer in [1, ${MAX_ENTRIES_LIMIT}], got ${maxEntries}`);
    }
    this.tiers = options.tiers ?? new TierRegistry();
    this.clock = options.clock ?? Date.now;
    this.store = new EntryStore(maxEntries, options.shards ?? DEFAULT_SHARDS);
    this.walker = new PrefixWalker(this.store, this.endpoints);
  }

  add(endpoint: string, tier: string, keys: BigUint64Array): void {
    this.checkOpen();
    checkEndpoint(endpoint);
    checkTier(tier);
    checkKeys(keys);
    const tierId = this.tiers.intern(tier);
    const id = this.internEndpoint(endpoint);
    this.sweepDue();
    const w = this.halves.load(keys);
    const store = this.store;
    const n = keys.length;
    for (let from = 0; from < n; from += WARM_BATCH) {
      const to = Math.min(n, from + WARM_BATCH);
      // Touch the batch's key-table slots first, their cache misses overlapping (see KeyTable.warm), so that the adds
      // below find them in cache.
      this.warmMix ^= store.table.warm(w, from, to);
      for (let i = from; i < to; i++) store.add(w[2 * i], w[2 * i + 1], id, tierId);
    }
  }

  remove(endpoint: string, tier: string, keys: BigUint64Array): void {
    this.checkOpen();
    checkEndpoint(endpoint);
    checkTier(tier);
    checkKeys(keys);
    const id = this.endpoints.find(endpoint);
    const tierId = this.tiers.find(tier);
    if (id === undefined || tierId === undefined) {
      this.removesOfUnknown += keys.length;
      return;
    }
    const w = this.halves.load(keys);
    const store = this.store;
    const n = keys.length;
    let unknown = 0;
    for (let from = 0; from < n; from += WARM_BATCH) {
      const to = Math.min(n, from + WARM_BATCH);
      this.warmMix ^= store.table.warm(w, from, to);
      for (let i = from; i < to; i++) if (!store.remove(w[2 * i], w[2 * i + 1], id, tierId)) unknown++;
    }
    this.removesOfUnknown += unknown;
  }

  clearEndpoint(endpoint: string): void {
    this.checkOpen();
    checkEndpoint(endpoint);
    const id = this.endpoints.find(endpoint);
    if (id === undefined) return;
    this.store.clear(id);
    this.endpoints.release(id);
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  lookupSync(keys: BigUint64Array, options?: LookupOptions): PrefixMatch[] {
    this.checkOpen();
    checkKeys(keys);
    checkLookupOptions(options);
    const now = options?.now ?? this.clock();
    return this.walker.lookup(keys, options?.candidates, options?.maxBlocks ?? Infinity, now);
  }

  async lookup(keys: BigUint64Array, options?: LookupOptions): Promise<PrefixMatch[]> {
    return this.lookupSync(keys, options);
  }

  /** lookupSync's answer as rows (index/match-rows.ts): nothing allocated per endpoint. */
  lookupRows(keys: BigUint64Array, options: LookupOptions | undefined, into: MatchRows): void {
    this.checkOpen();
    checkKeys(keys);
    checkLookupOptions(options);
    const now = options?.now ?? this.clock();
    this.walker.lookupRows(keys, options?.candidates, options?.maxBlocks ?? Infinity, now, into);
  }

  reserveSync(endpoint: string, keys: BigUint64Array, ttlMs: number): void {
    this.checkOpen();
    checkEndpoint(endpoint);
    checkKeys(keys);
    checkTtl(ttlMs);
    const id = this.internEndpoint(endpoint);
    const now = this.clock();
    this.sweepDue(now);
    const expiresAt = now + ttlMs;
    const w = words(keys);
    for (let i = 0; i < w.length; i += 2) this.store.reserve(w[i], w[i + 1], id, expiresAt);
  }

  async reserve(endpoint: string, keys: BigUint64Array, ttlMs: number): Promise<void> {
    this.reserveSync(endpoint, keys, ttlMs);
  }

  releaseSync(endpoint: string, keys: BigUint64Array): number {
    this.checkOpen();
    checkEndpoint(endpoint);
    checkKeys(keys);
    const id = this.endpoints.find(endpoint);
    if (id === undefined || this.store.expiry.size === 0) return 0;
    const now = this.clock();
    const w = words(keys);
    let released = 0;
    for (let i = 0; i < w.length; i += 2) if (this.store.release(w[i], w[i + 1], id, now)) released++;
    return released;
  }

  async release(endpoint: string, keys: BigUint64Array): Promise<number> {
    return this.releaseSync(endpoint, keys);
  }

  /** Reclaims every speculative entry expired at now (default: the clock). Returns how many. */
  sweepExpired(now: number = this.clock()): number {
    this.checkOpen();
    const n = this.store.expiry.sweep(now, Infinity, this.onExpire);
    this.expired += n;
    return n;
  }

  /** Resident entries of one endpoint (0 when unknown). */
  entriesOf(endpoint: string): number {
    this.checkOpen();
    checkEndpoint(endpoint);
    this.sweepExpired();
    const id = this.endpoints.find(endpoint);
    return id === undefined ? 0 : this.store.lists.count[id];
  }

  endpointEntriesSync(endpoint: string): Record<string, number> {
    this.checkOpen();
    checkEndpoint(endpoint);
    this.sweepExpired();
    const out: Record<string, number> = {};
    const id = this.endpoints.find(endpoint);
    if (id === undefined) return out;
    for (let t = 0; t < this.tiers.size; t++) {
      const n = this.store.lists.tierCount(id, t);
      if (n > 0) out[this.tiers.name(t)] = n;
    }
    return out;
  }

  async endpointEntries(endpoint: string): Promise<Record<string, number>> {
    return this.endpointEntriesSync(endpoint);
  }

  statsSync(): MemoryIndexStats {
    this.checkOpen();
    this.sweepExpired();
    const s = this.store;
    return {
      entries: s.pool.size,
      keys: s.table.size,
      speculativeEntries: s.expiry.size,
      endpoints: s.lists.active,
      evictions: s.evictions,
      bytes: s.bytes + this.walker.bytes,
      maxEntries: s.maxEntries,
      removesOfUnknown: this.removesOfUnknown,
      expiredSpeculative: this.expired,
    };
  }

  async stats(): Promise<MemoryIndexStats> {
    return this.statsSync();
  }

  /** Releases the storage; any later call throws. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.store.reset();
    this.endpoints.clear();
  }

  private internEndpoint(name: string): number {
    let id = this.endpoints.find(name);
    if (id !== undefined) return id;
    if (this.endpoints.full) this.releaseIdleEndpoints();
    id = this.endpoints.intern(name);
    this.store.lists.ensure(this.endpoints.idBound);
    return id;
  }

  /** Frees the ids of registered endpoints that hold no entries (only needed when every id is taken). */
  private releaseIdleEndpoints(): void {
    const count = this.store.lists.count;
    for (let id = 0; id < this.endpoints.idBound; id++) {
      if (count[id] === 0 && this.endpoints.isRegistered(id)) this.endpoints.release(id);
    }
  }

  /** Amortised reclamation from the write path: one clock read, at most SWEEP_BATCH entries. */
  private sweepDue(now?: number): void {
    const due = this.store.expiry.nextDue();
    if (due === Infinity) return;
    const t = now ?? this.clock();
    if (due <= t) this.expired += this.store.expiry.sweep(t, SWEEP_BATCH, this.onExpire);
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('MemoryIndex is closed');
  }
}

/** The keys as [lo0, hi0, lo1, hi1, …] without copying (little-endian, checked at load). */
function words(keys: BigUint64Array): Uint32Array {
  return new Uint32Array(keys.buffer, keys.byteOffset, keys.length * 2);
}

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error('the in-memory index reads uint64 keys as little-endian 32-bit halves; this platform is big-endian');
}
