import type { BlockHasher } from '../../keys/index.js';
import { EngineKeyMap, type ChainLeftover } from '../../index/engine-key-map.js';
import type { TierRegistry } from '../../index/tiers.js';
import type { IndexWriter } from '../../index/types.js';
import type { BlockRemovedEvent, BlockStoredEvent, KvEvent } from '../types.js';
import { IngestCounters } from './counters.js';
import { spreadExtraFeatures } from './extra-features.js';
import { pairEngineToRequest } from './pairing.js';

/** KV-cache group kinds whose blocks hold the whole prefix and so can answer prefix queries. */
export const INDEXED_SPEC_KINDS: ReadonlySet<string> = new Set(['full_attention', 'mla_attention', 'sink_full_attention']);

export interface IngestorOptions {
  hasher: BlockHasher;
  writer: IndexWriter;
  tiers: TierRegistry;
}

/**
 * The write path's dual-key rules (spec/block-keys.md): turns an endpoint's decoded events into request-key entries.
 * A BlockStored with tokens computes request keys (chained from the parent's request key) and records the bridge
 * engine key → request keys; removals and offload placeholders resolve through that bridge. Engine keys are
 * reference-counted per tier, and an index entry is added when an engine key becomes held on a tier and removed when
 * it no longer is. Events of one endpoint must be applied in order; different endpoints are independent.
 */
export class Ingestor {
  readonly counters = new IngestCounters();
  private readonly hasher: BlockHasher;
  private readonly writer: IndexWriter;
  private readonly tiers: TierRegistry;
  private readonly endpoints = new Map<string, EngineKeyMap>();
  private readonly scratch = new KeyScratch();

  constructor(options: IngestorOptions) {
    this.hasher = options.hasher;
    this.writer = options.writer;
    this.tiers = options.tiers;
  }

  /** Applies one batch of an endpoint's events in order, then flushes the writer (one round trip per batch). */
  async apply(endpoint: string, model: string, events: readonly KvEvent[]): Promise<void> {
    this.applySync(endpoint, model, events);
    await this.writer.flush();
  }

  /** Same as apply() without the flush: for in-process callers that flush themselves. */
  applySync(endpoint: string, model: string, events: readonly KvEvent[]): void {
    this.counters.batches++;
    let map = this.endpoints.get(endpoint);
    if (!map) this.endpoints.set(endpoint, (map = new EngineKeyMap()));
    for (const event of events) {
      switch (event.type) {
        case 'BlockStored':
          this.counters.storedEvents++;
          this.store(endpoint, model, map, event);
          break;
        case 'BlockRemoved':
          this.counters.removedEvents++;
          this.remove(endpoint, map, event);
          break;
        case 'AllBlocksCleared':
          this.counters.clearedEvents++;
          this.clear(endpoint);
          break;
      }
    }
  }

  /** Drops everything known about an endpoint: its index entries (all tiers) and its engine-key bridge. */
  clear(endpoint: string): void {
    this.endpoints.get(endpoint)?.clear();
    this.writer.clearEndpoint(endpoint);
  }

  /** Forgets an endpoint entirely (after clear(), the bridge itself is released). */
  forget(endpoint: string): void {
    this.clear(endpoint);
    this.endpoints.delete(endpoint);
  }

  /** Engine keys known for an endpoint (for stats and tests). */
  engineKeyCount(endpoint: string): number {
    return this.endpoints.get(endpoint)?.size ?? 0;
  }

  engineMapBytes(): number {
    let bytes = 0;
    for (const map of this.endpoints.values()) bytes += map.byteLength;
    return bytes;
  }

  private store(endpoint: string, model: string, map: EngineKeyMap, ev: BlockStoredEvent): void {
    const n = ev.blockHashes.length;
    if (n === 0) return;
    if (ev.kvCacheSpecKind !== null && !INDEXED_SPEC_KINDS.has(ev.kvCacheSpecKind)) {
      this.counters.skipKind(ev.kvCacheSpecKind, n);
      return;
    }
    const tier = this.tiers.intern(ev.medium);
    if (ev.tokenIds.length === 0) {
      this.storePlaceholders(endpoint, map, ev, tier);
      return;
    }
    if (ev.blockSize <= 0 || ev.tokenIds.length !== n * ev.blockSize) {
      this.counters.tokenCountMismatch++;
      return;
    }
    const fresh = this.defineChain(model, map, ev);
    if (!fresh) return;
    this.hold(endpoint, map, ev.blockHashes, tier);
  }

  /**
   * Computes the event's request keys and records each engine key's mapping and chain continuation. Returns false
   * (and counts) when the parent cannot be placed.
   */
  private defineChain(model: string, map: EngineKeyMap, ev: BlockStoredEvent): boolean {
    const n = ev.blockHashes.length;
    const eb = ev.blockSize;
    const B = this.hasher.blockSize;
    // Engine keys already mapped need no hashing: only the refcounts change (idempotent re-emits).
    if (allKnown(map, ev.blockHashes)) return true;

    let base: bigint;
    let leftover: ChainLeftover | null = null;
    if (ev.parentBlockHash === null) {
      base = this.hasher.rootKey(ev.loraName ?? model);
    } else {
      const start = map.chainStart(ev.parentBlockHash);
      if (start === null) {
        this.counters.parentUnknown += n;
        return false;
      }
      base = start.base;
      leftover = start.leftover;
    }

    const carried = leftover ? leftover.tokens.length : 0;
    const tokens = carried === 0 ? ev.tokenIds : concatTokens(leftover!.tokens, ev.tokenIds);
    const canonical = Math.floor(tokens.length / B);
    const extras = spreadExtraFeatures(
      {
        carried: leftover?.extras ?? [],
        carriedTokens: carried,
        extraKeys: ev.extraKeys,
        engineBlockSize: eb,
        engineBlocks: n,
        loraName: ev.loraName,
        chainStart: ev.parentBlockHash === null,
        cacheSalt: ev.cacheSalt,
      },
      canonical,
      B,
    );
    const keys = this.hasher.chain(tokens, base, extras.blocks);
    const mapped = pairEngineToRequest(n, eb, carried, keys, B);

    for (let j = 0; j < n; j++) {
      const end = carried + (j + 1) * eb;
      const aligned = end % B === 0;
      const chainKey = aligned ? (end / B >= 1 ? keys[end / B - 1] : base) : null;
      let tail: ChainLeftover | null = null;
      if (!aligned && j === n - 1) {
        const full = canonical * B;
        tail = {
          base: canonical > 0 ? keys[canonical - 1] : base,
          tokens: tokens.slice(full),
          extras: extras.leftover,
        };
      }
      map.define(ev.blockHashes[j], mapped[j], chainKey, tail);
    }
    return true;
  }

  /** Counts a store of each engine key on the tier; keys newly held add their request keys in one index write. */
  private hold(endpoint: string, map: EngineKeyMap, engineKeys: BigUint64Array, tier: number): void {
    const added = this.scratch.begin();
    for (let j = 0; j < engineKeys.length; j++) {
      const e = engineKeys[j];
      const count = map.addCount(e, tier, 1);
      this.counters.blocksStored++;
      if (count !== 1) {
        this.counters.duplicateStores++;
        continue;
      }
      added.push(map.requestKeys(e));
    }
    if (added.length > 0) {
      this.writer.add(endpoint, this.tiers.name(tier), added.keys());
      this.counters.requestKeysAdded += added.length;
    }
  }

  private storePlaceholders(endpoint: string, map: EngineKeyMap, ev: BlockStoredEvent, tier: number): void {
    const known: bigint[] = [];
    for (const e of ev.blockHashes) {
      if (map.has(e)) known.push(e);
      else this.counters.offloadUnknown++;
    }
    if (known.length > 0) this.hold(endpoint, map, BigUint64Array.from(known), tier);
  }

  private remove(endpoint: string, map: EngineKeyMap, ev: BlockRemovedEvent): void {
    const tier = this.tiers.intern(ev.medium);
    const removed = this.scratch.begin();
    for (const e of ev.blockHashes) {
      if (map.count(e, tier) === 0) {
        this.counters.removedUnknown++;
        continue;
      }
      this.counters.blocksRemoved++;
      if (map.addCount(e, tier, -1) > 0) continue;
      removed.push(map.requestKeys(e));
      if (map.isUnheld(e)) map.forget(e);
    }
    if (removed.length > 0) {
      this.writer.remove(endpoint, this.tiers.name(tier), removed.keys());
      this.counters.requestKeysRemoved += removed.length;
    }
  }
}

/** A reusable growable list of request keys, so that each event makes one index call. */
class KeyScratch {
  private buf = new BigUint64Array(256);
  length = 0;

  begin(): this {
    this.length = 0;
    return this;
  }

  push(keys: BigUint64Array): void {
    if (this.length + keys.length > this.buf.length) {
      const next = new BigUint64Array(Math.max(this.buf.length * 2, this.length + keys.length));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    this.buf.set(keys, this.length);
    this.length += keys.length;
  }

  /** A view valid until the next begin(); the index copies what it keeps. */
  keys(): BigUint64Array {
    return this.buf.subarray(0, this.length);
  }
}

function allKnown(map: EngineKeyMap, engineKeys: BigUint64Array): boolean {
  for (let j = 0; j < engineKeys.length; j++) if (!map.has(engineKeys[j])) return false;
  return true;
}

function concatTokens(a: Uint32Array, b: Uint32Array): Uint32Array {
  const out = new Uint32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
