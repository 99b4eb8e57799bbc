/**
 * The Index in Redis (a single server or Redis Cluster), shared by every router replica. Key schema, scripts and
 * placement: key-schema.ts, scripts.ts and docs/redis.md.
 *
 * Round trips: a lookup is one LOOKUP script (walks the keys in order inside Redis and stops at the first block no
 * candidate holds); a flush is one APPLY script per hash tag touched, sent together (one under placement 'single',
 * unless the batch exceeds maxKeysPerScript: then several, pipelined).
 * A name never seen before (endpoint, tier, or an endpoint's first entry in a tag) costs one extra registry call.
 *
 * Semantics: those of MemoryIndex (refcounts per (key, endpoint, tier), speculative entries replaced by a confirming
 * add, remove never touching speculative entries), except: writes are visible after flush(); reserve/release apply
 * at once; there is no maxEntries eviction (bound the index with Redis maxmemory and entryTtlMs); speculative expiry
 * compares the times callers pass (the injected clock, or options.now), so replicas need synchronised clocks.
 *
 * Faults: a call while Redis is down or slow rejects promptly with IndexUnavailableError. A failed flush drops its
 * batch and reports the batch's endpoints for resync (pendingResync/takeResync/onResync): whether Redis applied it is
 * unknown, so the owner must clear and rebuild those endpoints. A restarted server (new run id, data lost) reports
 * every endpoint this process wrote.
 */

import { normaliseTier, TierRegistry } from '../tiers.js';
import type { Index, LookupOptions, PrefixMatch } from '../types.js';
import { checkEndpoint, checkKeys, checkLookupOptions, checkTier, checkTtl } from '../memory/validate.js';
import { asUnavailable, IndexUnavailableError } from './errors.js';
import { EndpointLeases } from './leases.js';
import { KeySchema } from './key-schema.js';
import { RedisConnection } from './redis-client.js';
import { resolveOptions, type RedisIndexOptions, type RedisIndexStats } from './redis-options.js';
import { lookupArgs, mergeCounters, parseMatches } from './replies.js';
import { SharedIds } from './shared-ids.js';
import { TagStore } from './tag-store.js';
import { checkAnchors, rawKeys, WriteBuffer, type WriteOp } from './write-buffer.js';
import { refuseUnsafeEviction, registryMapsBack } from './registry-check.js';

export class RedisIndex implements Index {
  readonly backend = 'redis' as const;
  readonly tiers: TierRegistry;
  readonly schema: KeySchema;
  /** Its connection, shared with the leases and the Redis in-flight ledger (src/scoring/load/redis-ledger.ts). */
  readonly conn: RedisConnection;
  private readonly ids: SharedIds;
  private readonly buffer: WriteBuffer;
  private readonly clock: () => number;
  private readonly store: TagStore;
  private readonly onResync?: (endpoint: string, reason: string) => void;
  private readonly resync = new Set<string>();
  private readonly written = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private removesOfUnknown = 0;
  private unanchoredKeys = 0;
  private runId: string | undefined;
  private serverCheck: Promise<void> | undefined;
  private closed = false;
  /** The registry generation last seen (registry-script.ts); a change means the registry was lost. */
  private generation: string | undefined;
  private registryTimer: NodeJS.Timeout | undefined;
  /** Times the registry was found lost (evicted or deleted) and the caches dropped. */
  registryLosses = 0;

  private constructor(options: RedisIndexOptions) {
    const o = resolveOptions(options);
    this.schema = new KeySchema(o.keyPrefix, o.placement, o.tagCount, o.endpointBuckets);
    this.tiers = options.tiers ?? new TierRegistry();
    this.clock = options.clock ?? Date.now;
    this.onResync = options.onResync;
    this.ids = new SharedIds(this.schema, this.tiers);
    this.buffer = new WriteBuffer(o.maxBufferedKeys, (e) => this.markResync(e, 'write buffer full'));
    this.conn = new RedisConnection(options);
    this.store = new TagStore(this.conn, this.schema, this.ids, o.entryTtlMs, o.sweepBatch, o.maxKeysPerScript);
    this.store.onGeneration = (g) => this.noteGeneration(g, true);
  }

  /** Connects (rejecting with IndexUnavailableError when Redis cannot be reached) and returns the index. */
  static async open(options: RedisIndexOptions): Promise<RedisIndex> {
    const index = new RedisIndex(options);
    try {
      await index.conn.connect();
      index.runId = await index.conn.runId();
    } catch (err) {
      await index.conn.close();
      throw asUnavailable(err, 'connect');
    }
    await refuseUnsafeEviction(index.conn, options.allowUnsafeEviction ?? false);
    const check = options.registryCheckMs ?? 1000;
    index.registryTimer = setInterval(() => void index.checkRegistry().catch(() => undefined), check);
    index.registryTimer.unref();
    index.conn.client.on('ready', () => {
      // Writes wait for this check: ids cached before a data loss must not reach the new server.
      const check = index.checkServer();
      index.serverCheck = check;
      void check.finally(() => {
        if (index.serverCheck === check) index.serverCheck = undefined;
      });
    });
    return index;
  }

  /** Whether writers must pass chain anchors with add/remove (placement 'anchor', e.g. on a cluster). */
  get needsAnchors(): boolean {
    return this.schema.placement === 'anchor';
  }

  /** True while connected and ready (for health readiness). */
  get available(): boolean {
    return this.conn.ready;
  }

  /** Keys buffered since the last flush. */
  get bufferedKeys(): number {
    return this.buffer.bufferedKeys;
  }

  /** Endpoint ownership leases (leases.ts) on this index's connection and key prefix. */
  leases(owner: string, ttlMs: number): EndpointLeases {
    return new EndpointLeases(this.conn.client, owner, ttlMs, this.schema.prefix);
  }

  /** Endpoints whose index state is unknown and need a resync, without clearing the list. */
  pendingResync(): string[] {
    return [...this.resync];
  }

  /** Endpoints needing a resync; the list is cleared (the caller takes responsibility for them). */
  takeResync(): string[] {
    const out = [...this.resync];
    this.resync.clear();
    return out;
  }

  /**
   * +1 reference per key. anchor (placement 'anchor'): the request key of block 0 of the keys' chain, or one such
   * anchor per key; without it every key goes to the default tag (see needsAnchors).
   */
  add(endpoint: string, tier: string, keys: BigUint64Array, anchor?: bigint | BigUint64Array): void {
    this.checkOpen();
    checkEndpoint(endpoint);
    checkTier(tier);
    checkKeys(keys);
    checkAnchors(anchor, keys.length);
    this.tiers.intern(tier);
    if (anchor === undefined && this.needsAnchors) this.unanchoredKeys += keys.length;
    this.buffer.push('a', endpoint, normaliseTier(tier), keys, anchor);
  }

  /** −1 reference per key. anchor as for add(): the same anchors the keys were added with. */
  remove(endpoint: string, tier: string, keys: BigUint64Array, anchor?: bigint | BigUint64Array): void {
    this.checkOpen();
    checkEndpoint(endpoint);
    checkTier(tier);
    checkKeys(keys);
    checkAnchors(anchor, keys.length);
    if (this.tiers.find(tier) === undefined) {
      this.removesOfUnknown += keys.length;
      return;
    }
    if (anchor === undefined && this.needsAnchors) this.unanchoredKeys += keys.length;
    this.buffer.push('r', endpoint, normaliseTier(tier), keys, anchor);
  }

  clearEndpoint(endpoint: string): void {
    this.checkOpen();
    checkEndpoint(endpoint);
    this.buffer.clear(endpoint);
  }

  /** Applies the buffered writes, in order after every earlier flush. */
  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('RedisIndex is closed'));
    const ops = this.buffer.take();
    const run = this.chain.then(() => this.apply(ops));
    this.chain = run.catch(() => undefined);
    return run;
  }

  async lookup(keys: BigUint64Array, options?: LookupOptions): Promise<PrefixMatch[]> {
    this.checkOpen();
    checkKeys(keys);
    checkLookupOptions(options);
    const blocks = Math.min(keys.length, options?.maxBlocks ?? Infinity);
    if (blocks === 0) return [];
    const now = options?.now ?? this.clock();
    const candidates = options?.candidates;
    try {
      // Ids cached before a reconnect are checked against the server first (see checkServer).
      if (this.serverCheck) await this.serverCheck;
      let eids: number[] | undefined;
      if (candidates !== undefined) {
        await this.ids.findEndpoints(this.conn, candidates, this.clock());
        eids = [...new Set(candidates.map((c) => this.ids.endpointId(c)).filter((id) => id !== undefined))];
        if (eids.length === 0) return [];
      }
      const tag = this.schema.tagOfKeys(keys);
      const args = lookupArgs(this.schema.tagPrefix(tag), now, keys.subarray(0, blocks), eids);
      const reply = (await this.conn.script(
        'kviLookup',
        this.schema.block(tag, args.first),
        ...args.argv,
      )) as unknown[];
      return await parseMatches(reply, this.ids, this.conn, candidates === undefined);
    } catch (err) {
      throw asUnavailable(err, 'lookup');
    }
  }

  async reserve(endpoint: string, keys: BigUint64Array, ttlMs: number): Promise<void> {
    this.checkOpen();
    checkEndpoint(endpoint);
    checkKeys(keys);
    checkTtl(ttlMs);
    if (keys.length === 0) return;
    const now = this.clock();
    const tag = this.schema.tagOfKeys(keys);
    try {
      if (this.serverCheck) await this.serverCheck;
      await this.store.prepare([endpoint], [], this.schema.placement === 'anchor' ? [[endpoint, tag]] : [], []);
      const eid = this.ids.endpointId(endpoint) as number;
      await this.store.applyTag(tag, now, ['v', String(eid), now + ttlMs, rawKeys(keys)]);
      this.written.add(endpoint);
    } catch (err) {
      throw asUnavailable(err, 'reserve');
    }
  }

  async release(endpoint: string, keys: BigUint64Array): Promise<number> {
    this.checkOpen();
    checkEndpoint(endpoint);
    checkKeys(keys);
    if (keys.length === 0) return 0;
    const now = this.clock();
    try {
      await this.ids.findEndpoints(this.conn, [endpoint], now);
      const eid = this.ids.endpointId(endpoint);
      if (eid === undefined) return 0;
      const [, released] = await this.store.applyTag(
        this.schema.tagOfKeys(keys),
        now,
        ['l', String(eid), rawKeys(keys)],
        false,
      );
      return released;
    } catch (err) {
      throw asUnavailable(err, 'release');
    }
  }

  /** Reclaims every speculative entry expired at now (default: the clock). Returns how many. */
  async sweepExpired(now: number = this.clock()): Promise<number> {
    this.checkOpen();
    try {
      let n = 0;
      for (const c of await this.store.counters(await this.store.allTags(), now)) n += c.swept;
      return n;
    } catch (err) {
      throw asUnavailable(err, 'sweepExpired');
    }
  }

  async endpointEntries(endpoint: string): Promise<Record<string, number>> {
    this.checkOpen();
    checkEndpoint(endpoint);
    const now = this.clock();
    try {
      await this.ids.findEndpoints(this.conn, [endpoint], now);
      const eid = this.ids.endpointId(endpoint);
      if (eid === undefined) return {};
      const tags = await this.store.endpointTags(eid);
      const merged = await mergeCounters(await this.store.counters(tags, now), this.ids, this.conn, this.tiers);
      return merged.perEndpoint.get(eid) ?? {};
    } catch (err) {
      throw asUnavailable(err, 'endpointEntries');
    }
  }

  /** Resident entries of one endpoint (0 when unknown). */
  async entriesOf(endpoint: string): Promise<number> {
    return Object.values(await this.endpointEntries(endpoint)).reduce((a, b) => a + b, 0);
  }

  async stats(): Promise<RedisIndexStats> {
    this.checkOpen();
    try {
      const counters = await this.store.counters(await this.store.allTags(), this.clock());
      const merged = await mergeCounters(counters, this.ids, this.conn, this.tiers);
      return {
        entries: merged.entries,
        keys: merged.keys,
        speculativeEntries: merged.spec,
        endpoints: merged.perEndpoint.size,
        evictions: 0,
        bytes: await this.conn.usedMemory(),
        maxEntries: 0,
        removesOfUnknown: this.removesOfUnknown,
        unanchoredKeys: this.unanchoredKeys,
        expiredSpeculative: merged.expired,
      };
    } catch (err) {
      throw asUnavailable(err, 'stats');
    }
  }

  /**
   * Compares the registry generation in Redis with the one this process cached its ids under. A missing or changed
   * generation means the registry was lost while this process held ids from it: the caches are dropped and every
   * endpoint this process wrote is resynchronised (its old entries carry ids no name maps to any more).
   */
  async checkRegistry(): Promise<void> {
    if (this.closed || !this.conn.ready) return;
    const g = await this.conn.get(this.schema.meta('gen'));
    if (g === null) {
      if (this.generation !== undefined) this.registryLost();
      this.generation = undefined;
      return;
    }
    this.noteGeneration(g, false);
    // A partial loss (some registry hashes evicted, the generation kept): the generation is dropped so that every
    // replica (and the next PREPARE) starts a new one.
    if (!(await registryMapsBack(this.conn, this.schema, this.ids, this.written))) {
      await this.conn.del(this.schema.meta('gen'));
      this.generation = undefined;
      this.registryLost();
    }
  }

  /** Drops buffered writes and disconnects; any later call throws. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.registryTimer);
    this.buffer.take();
    await this.chain;
    await this.conn.close();
  }

  private async apply(ops: WriteOp[]): Promise<void> {
    if (ops.length === 0) return;
    if (this.serverCheck) await this.serverCheck;
    const endpoints = [...new Set(ops.map((o) => o.endpoint))];
    try {
      this.removesOfUnknown += await this.store.applyBatch(ops, this.clock());
      for (const e of endpoints) this.written.add(e);
    } catch (err) {
      for (const e of endpoints) this.markResync(e, 'flush failed');
      throw asUnavailable(err, 'flush');
    }
  }

  /** A generation seen by PREPARE (`fromWrite`: its flush must fail on a change) or by checkRegistry. */
  private noteGeneration(g: string, fromWrite: boolean): void {
    const known = this.generation;
    this.generation = g;
    if (known === undefined || known === g) return;
    this.registryLost();
    if (fromWrite)
      throw new IndexUnavailableError(
        'redis index registry was lost (evicted or deleted): endpoint ids reset, endpoints resynchronising',
      );
  }

  private registryLost(): void {
    this.registryLosses++;
    this.ids.reset();
    this.store.reset();
    for (const e of this.written) this.markResync(e, 'redis registry lost');
    this.written.clear();
  }

  private markResync(endpoint: string, reason: string): void {
    this.resync.add(endpoint);
    this.onResync?.(endpoint, reason);
  }

  /**
   * After a reconnect: a new run id means the server lost its data (no persistence) — ids and entries are gone. The
   * check retries while the connection stays up: giving up would leave cached ids that the new server does not know,
   * so this replica's writes would land under ids no other replica can resolve.
   */
  private async checkServer(): Promise<void> {
    for (let attempt = 0; attempt < 50 && !this.closed && this.conn.ready; attempt++) {
      try {
        const id = await this.conn.runId();
        if (id === undefined || this.runId === undefined || id === this.runId) return;
        this.runId = id;
        this.generation = undefined; // a new server starts a new registry generation
        this.ids.reset();
        this.store.reset();
        for (const e of this.written) this.markResync(e, 'redis data lost');
        this.written.clear();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('RedisIndex is closed');
  }
}
