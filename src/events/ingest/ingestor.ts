import type { BlockHasher } from '../../keys/index.js';
import { type ChainLeftover, newEngineKeyEntry } from './engine-key-map.js';
import { fromHalves, hi32, KeyHalves, lo32 } from '../../common/index.js';
import { GPU_TIER, MAX_TIERS, type TierRegistry } from '../../index/tiers.js';
import type { IndexWriter } from '../../index/types.js';
import type { ResidencyRecorder } from '../../index/encoder-residency.js';
import type { BlockRemovedEvent, BlockStoredEvent, KvEvent } from '../types.js';
import { Holding } from './holding.js';
import { imageIdentifiers, spreadExtraFeatures } from './extra-features.js';
import { containedEnd, containedFirst } from './pairing.js';
import { EndpointState } from './endpoint-state.js';
import { defineSpans, leftoverPieces } from './event-spans.js';
import type { StoreBound } from './store-bound.js';

/** KV-cache group kinds whose blocks hold the whole prefix and so can answer prefix queries. */
export const INDEXED_SPEC_KINDS: ReadonlySet<string> = new Set([
  'full_attention',
  'mla_attention',
  'sink_full_attention',
]);

export interface IngestorOptions {
  hasher: BlockHasher;
  writer: IndexWriter;
  tiers: TierRegistry;
  /** Store bound of endpoints without their own (store-bound.ts); default none. */
  defaultStoreBound?: StoreBound | null;
  /** Milliseconds since the epoch, for store-bound TTLs; default Date.now. */
  clock?: () => number;
  /** Encoder residency, told which image identifiers each endpoint's stored blocks carry; default none. */
  residency?: ResidencyRecorder | null;
}

/** Most engine blocks one call drops for a store bound, so that a large backlog is spread over calls. */
const MAX_DROPS_PER_CALL = 20_000;

/**
 * The write path's dual-key rules (spec/block-keys.md): turns an endpoint's decoded events into request-key entries.
 * A BlockStored with tokens computes request keys (chained from the parent's request key) and records the bridge
 * engine key → request keys; removals and offload placeholders resolve through that bridge. Engine keys are
 * reference-counted per tier, and an index entry is added when an engine key becomes held on a tier and removed when
 * it no longer is. Events of one endpoint must be applied in order; different endpoints are independent.
 */
export class Ingestor extends Holding {
  private readonly hasher: BlockHasher;
  private readonly endpoints = new Map<string, EndpointState>();
  private readonly hashes = new KeyHalves();
  /** Request keys of the event being defined, as uint32 halves (reused). */
  private keyHalves = new Uint32Array(128);
  /** The engine-key entry define() takes, reused for every block (no allocation per block). */
  private readonly entry = newEngineKeyEntry();

  private readonly defaultBound: StoreBound | null;
  private readonly bounds = new Map<string, StoreBound>();
  private readonly clock: () => number;
  private readonly dropKey = { lo: 0, hi: 0 };
  private readonly residency: ResidencyRecorder | null;

  constructor(options: IngestorOptions) {
    super(options.writer, options.tiers);
    this.residency = options.residency ?? null;
    this.defaultBound = options.defaultStoreBound ?? null;
    this.clock = options.clock ?? Date.now;
    this.hasher = options.hasher;
  }

  /** Applies one batch of an endpoint's events in order, then flushes the writer (one round trip per batch). */
  async apply(endpoint: string, model: string, events: readonly KvEvent[]): Promise<void> {
    this.applySync(endpoint, model, events);
    await this.writer.flush();
  }

  /**
   * Same as apply() without the flush: for in-process callers that flush themselves. `start`/`end` apply a slice of
   * the batch (the transport applies long batches in chunks, yielding between them); a batch is counted once, with
   * its first slice.
   */
  applySync(endpoint: string, model: string, events: readonly KvEvent[], start = 0, end = events.length): void {
    if (start === 0) this.counters.batches++;
    this.now = this.clock();
    let state = this.endpoints.get(endpoint);
    if (!state)
      this.endpoints.set(endpoint, (state = new EndpointState(this.trackAnchors, this.boundOf(endpoint), this.now)));
    for (let i = start; i < end; i++) {
      const event = events[i];
      switch (event.type) {
        case 'BlockStored':
          this.counters.storedEvents++;
          this.store(endpoint, model, state, event);
          break;
        case 'BlockRemoved':
          this.counters.removedEvents++;
          this.remove(endpoint, state, event);
          break;
        case 'AllBlocksCleared':
          this.counters.clearedEvents++;
          this.clear(endpoint);
          break;
      }
    }
    if (state.ages) this.enforceBound(endpoint, state);
  }

  /**
   * Sets (or, with null, removes) an endpoint's own store bound; it applies from now on, to the blocks it already
   * holds too (their age starts now). Endpoints without one use the default bound.
   */
  setStoreBound(endpoint: string, bound: StoreBound | null): void {
    if (bound === null) this.bounds.delete(endpoint);
    else this.bounds.set(endpoint, bound);
    this.endpoints.get(endpoint)?.setBound(bound ?? this.defaultBound, this.clock());
  }

  /**
   * Drops what store bounds say must go now, on every endpoint: TTLs expire between events too (a store-only
   * publisher that falls silent). The service calls this on a timer; at most MAX_DROPS_PER_CALL blocks per endpoint.
   */
  sweepStoreBounds(): number {
    const before = this.counters.boundDrops;
    this.now = this.clock();
    for (const [endpoint, state] of this.endpoints) if (state.ages) this.enforceBound(endpoint, state);
    return this.counters.boundDrops - before;
  }

  private boundOf(endpoint: string): StoreBound | null {
    return this.bounds.get(endpoint) ?? this.defaultBound;
  }

  /** Drops the endpoint's oldest engine blocks (all tiers) while its store bound is exceeded. */
  private enforceBound(endpoint: string, state: EndpointState): void {
    const ages = state.ages!;
    const key = this.dropKey;
    for (let budget = MAX_DROPS_PER_CALL; budget > 0 && ages.nextToDrop(state.map.size, this.now, key); budget--) {
      this.counters.boundDrops++;
      this.releaseEverywhere(endpoint, state, key.lo, key.hi);
    }
  }

  /** Makes the writes of applySync() visible (one index round trip). */
  flush(): Promise<void> {
    return this.writer.flush();
  }

  /** Drops everything known about an endpoint: its index entries (all tiers) and its engine-key bridge. */
  clear(endpoint: string): void {
    this.endpoints.get(endpoint)?.clear();
    this.writer.clearEndpoint(endpoint);
    this.residency?.clearEndpoint(endpoint);
  }

  /** Forgets an endpoint entirely (after clear(), the bridge itself is released). */
  forget(endpoint: string): void {
    this.clear(endpoint);
    this.endpoints.delete(endpoint);
  }

  /**
   * Drops this process's bridge for an endpoint but leaves its index entries: another replica took the endpoint
   * over and maintains them in the shared index from now on.
   */
  handOver(endpoint: string): void {
    this.endpoints.delete(endpoint);
    // Residency is what this process ingests: the new owner's events feed its own (docs/architecture.md).
    this.residency?.clearEndpoint(endpoint);
  }

  /** Engine keys known for an endpoint (for stats and tests). */
  engineKeyCount(endpoint: string): number {
    return this.endpoints.get(endpoint)?.map.size ?? 0;
  }

  engineMapBytes(): number {
    let bytes = 0;
    for (const state of this.endpoints.values()) bytes += state.byteLength;
    return bytes;
  }

  private store(endpoint: string, model: string, state: EndpointState, ev: BlockStoredEvent): void {
    const n = ev.blockHashes.length;
    if (n === 0) return;
    // Whatever the index makes of the blocks, the endpoint processed the images they carry.
    if (this.residency && ev.extraKeys)
      this.residency.record(endpoint, imageIdentifiers(ev.extraKeys, ev.loraName, ev.parentBlockHash === null));
    if (ev.kvCacheSpecKind !== null && !INDEXED_SPEC_KINDS.has(ev.kvCacheSpecKind)) {
      this.counters.skipKind(ev.kvCacheSpecKind, n);
      return;
    }
    // vLLM names the kind of every group it can describe; a group > 0 without one is a group it could not (llm-d and
    // Dynamo refuse it too: docs/events.md). Group 0 without a kind is a pre-HMA publisher's only group.
    if (ev.kvCacheSpecKind === null && ev.groupIdx !== null && ev.groupIdx > 0) {
      this.counters.groupWithoutKind += n;
      return;
    }
    const map = state.map;
    const tier = this.tiers.intern(ev.medium);
    // A lower tier's self-describing multi-block store may later be removed by its last key alone (offload-chunks.ts).
    if (tier !== GPU_TIER && n > 1 && ev.tokenIds.length > 0) state.chunks.stored(tier, ev.blockHashes);
    const halves = this.hashes.load(ev.blockHashes);
    if (ev.tokenIds.length === 0) {
      // Offload placeholder: "this endpoint also holds these engine keys on tier X".
      this.hold(endpoint, state, halves, n, tier);
      return;
    }
    if (ev.blockSize <= 0 || ev.tokenIds.length !== n * ev.blockSize) {
      this.counters.tokenCountMismatch++;
      return;
    }
    // Engine keys already mapped need no hashing: only the counts change (idempotent re-emits).
    if (map.allKnown(halves, n)) this.hold(endpoint, state, halves, n, tier);
    else this.defineChain(endpoint, model, state, ev, halves, tier);
  }

  /**
   * Computes the event's request keys, records each engine key's mapping and chain continuation, and counts the
   * store of each on the tier as hold() does (with the slot define() returns: one probe per block). Canonical blocks
   * made of several engine blocks become spans. Counts the event's blocks as parentUnknown, and changes nothing, when
   * the parent cannot be placed.
   */
  private defineChain(
    endpoint: string,
    model: string,
    state: EndpointState,
    ev: BlockStoredEvent,
    halves: Uint32Array,
    tier: number,
  ): void {
    const map = state.map;
    const n = ev.blockHashes.length;
    const eb = ev.blockSize;
    const B = this.hasher.blockSize;

    let baseLo: number;
    let baseHi: number;
    let leftover: ChainLeftover | null = null;
    let anchor: bigint | null = null;
    if (ev.parentBlockHash === null) {
      const root = this.hasher.rootKey(ev.loraName ?? model);
      baseLo = lo32(root);
      baseHi = hi32(root);
    } else {
      const parent = this.parent.loadOne(ev.parentBlockHash);
      const start = map.chainStart(parent[0], parent[1]);
      if (start === null) {
        this.counters.parentUnknown += n;
        return;
      }
      baseLo = start.baseLo;
      baseHi = start.baseHi;
      leftover = start.leftover;
      if (start.hasAnchor) anchor = fromHalves(start.anchorLo, start.anchorHi);
    }

    const carried = leftover ? leftover.tokens.length : 0;
    const tokens = carried === 0 ? ev.tokenIds : concatTokens(leftover!.tokens, ev.tokenIds);
    const canonical = Math.floor(tokens.length / B);
    const extras =
      ev.extraKeys === null && carried === 0 && ev.cacheSalt === null
        ? NO_EXTRAS
        : spreadExtraFeatures(
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
    if (this.keyHalves.length < 2 * canonical)
      this.keyHalves = new Uint32Array(Math.max(2 * canonical, 2 * this.keyHalves.length));
    const keyHalves = this.keyHalves;
    this.hasher.chainHalves(tokens, baseLo, baseHi, extras.blocks, keyHalves);
    // A chain's anchor is its block 0: inherited, or this event's first key when it completes block 0.
    let anchorLo = 0;
    let anchorHi = 0;
    if (this.trackAnchors) {
      if (anchor === null && canonical > 0) anchor = fromHalves(keyHalves[0], keyHalves[1]);
      if (anchor !== null) {
        anchorLo = lo32(anchor);
        anchorHi = hi32(anchor);
      }
    }

    const added = this.scratch.begin();
    const anchors = this.trackAnchors ? this.anchorScratch.begin() : undefined;
    const entry = this.entry;
    entry.keys = keyHalves;
    entry.anchorLo = anchorLo;
    entry.anchorHi = anchorHi;
    for (let j = 0; j < n; j++) {
      const start = carried + j * eb;
      const end = start + eb;
      // Engine block j ↔ the complete canonical blocks that lie inside it; one it shares is a span (below).
      const first = containedFirst(start, B);
      const last = containedEnd(start, eb, B, canonical);
      const chainIndex = end % B === 0 ? end / B - 1 : -1;
      let tail: ChainLeftover | null = null;
      if (chainIndex < 0 && j === n - 1) {
        tail = {
          base:
            canonical > 0
              ? fromHalves(keyHalves[2 * canonical - 2], keyHalves[2 * canonical - 1])
              : fromHalves(baseLo, baseHi),
          tokens: tokens.slice(canonical * B),
          extras: extras.leftover,
          anchor,
          pieces: leftoverPieces(leftover?.pieces ?? [], carried, halves, n, eb, canonical * B),
        };
      }
      // Counting right after define() is what hold() would do afterwards: define() never changes a known key, and
      // the slot is valid until the next define().
      const lo = halves[2 * j];
      const hi = halves[2 * j + 1];
      entry.lo = lo;
      entry.hi = hi;
      entry.first = first;
      entry.end = last;
      entry.chainIndex = chainIndex;
      entry.leftover = tail;
      const slot = map.define(entry);
      // A piece forgotten while its spans lived links to them again (spans.ts); define() left `slot` valid.
      state.spans.adopt(map, lo, hi);
      this.holdAt(state, slot, lo, hi, tier, added, anchors);
    }
    if (carried > 0 || eb % B !== 0) {
      const layout = { carried, engineBlocks: n, engineBlockSize: eb, blockSize: B, canonical };
      const spans = state.spans;
      defineSpans(state, leftover?.pieces ?? [], halves, keyHalves, layout, anchorLo, anchorHi, (mask, id) => {
        if (mask & (1 << tier)) {
          added.pushHalves(spans.keyLo(id), spans.keyHi(id));
          anchors?.pushHalves(spans.anchorLo(id), spans.anchorHi(id));
        }
        // Rare: the pieces were already held together on other tiers before this event defined the span.
        for (let t = 0; t < MAX_TIERS; t++) {
          if (t === tier || (mask & (1 << t)) === 0) continue;
          const anchor = anchors ? keyOf(spans.anchorLo(id), spans.anchorHi(id)) : undefined;
          this.writer.add(endpoint, this.tiers.name(t), keyOf(spans.keyLo(id), spans.keyHi(id)), anchor);
          this.counters.requestKeysAdded++;
        }
      });
    }
    this.addHeld(endpoint, tier, added, anchors);
  }

  private remove(endpoint: string, state: EndpointState, ev: BlockRemovedEvent): void {
    const map = state.map;
    const tier = this.tiers.intern(ev.medium);
    const halves = this.hashes.load(ev.blockHashes);
    map.warm(halves, ev.blockHashes.length);
    const removed = this.scratch.begin();
    const anchors = this.trackAnchors ? this.anchorScratch.begin() : undefined;
    // The event's hashes as a set, built only if a chunk key is named (a block-wise removal lists the chunk's blocks).
    let inEvent: Set<bigint> | null = null;
    const listed = (key: bigint) => (inEvent ??= new Set(ev.blockHashes)).has(key);
    for (let j = 0; j < 2 * ev.blockHashes.length; j += 2) {
      if (state.chunks.size > 0 && tier !== GPU_TIER) {
        const chunk = state.chunks.keyOnly(tier, ev.blockHashes[j / 2], listed);
        if (chunk) {
          this.counters.keyOnlyRemovals++;
          this.releaseChunk(state, chunk, tier, removed, anchors);
          continue;
        }
      }
      const slot = map.slotOf(halves[j], halves[j + 1]);
      if (slot < 0 || map.countAt(slot, tier) === 0) {
        this.counters.removedUnknown++;
        continue;
      }
      this.counters.blocksRemoved++;
      this.releaseAt(state, slot, halves[j], halves[j + 1], tier, removed, anchors);
    }
    this.removeReleased(endpoint, tier, removed, anchors);
  }
}

function keyOf(lo: number, hi: number): BigUint64Array {
  return BigUint64Array.of(fromHalves(lo, hi));
}

const NO_EXTRAS = { blocks: null, leftover: [] };

function concatTokens(a: Uint32Array, b: Uint32Array): Uint32Array {
  const out = new Uint32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
