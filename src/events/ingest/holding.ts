import type { KeySink } from './engine-key-map.js';
import { KeyHalves } from '../../common/index.js';
import { MAX_TIERS, type TierRegistry } from '../../index/tiers.js';
import type { IndexWriter } from '../../index/types.js';
import { IngestCounters } from './counters.js';
import type { EndpointState } from './endpoint-state.js';
import { KeyScratch } from './key-scratch.js';

/**
 * Store counts → index writes: the counting half of ingest (the Ingestor turns events into calls of these). An
 * engine key's count per tier goes up with each store and down with each removal; when it becomes held on a tier its
 * own request keys and the spans it completes are added, and when it stops being held they are removed.
 */
export abstract class Holding {
  readonly counters = new IngestCounters();
  protected readonly scratch = new KeyScratch();
  /** Chain anchors parallel to `scratch`, when the writer places keys by chain (IndexWriter.needsAnchors). */
  protected readonly anchorScratch = new KeyScratch();
  protected readonly trackAnchors: boolean;
  /** One engine key as uint32 halves (reused: no bigint arithmetic). */
  protected readonly parent = new KeyHalves();
  /** The clock read once per batch (store times for store bounds). */
  protected now = 0;

  constructor(
    protected readonly writer: IndexWriter,
    protected readonly tiers: TierRegistry,
  ) {
    this.trackAnchors = writer.needsAnchors === true;
  }

  /** Releases every store of the engine key on every tier, as if all its removals had arrived. */
  protected releaseEverywhere(endpoint: string, state: EndpointState, lo: number, hi: number): void {
    const map = state.map;
    const first = map.slotOf(lo, hi);
    if (first < 0) return;
    const mask = map.heldTiersAt(first);
    for (let t = 0; t < MAX_TIERS; t++) {
      if ((mask & (1 << t)) === 0) continue;
      const slot = map.slotOf(lo, hi);
      map.clampCountToOneAt(slot, t);
      const removed = this.scratch.begin();
      const anchors = this.trackAnchors ? this.anchorScratch.begin() : undefined;
      this.releaseAt(state, slot, lo, hi, t, removed, anchors);
      this.removeReleased(endpoint, t, removed, anchors);
    }
  }

  /**
   * Counts a store of each engine key on the tier; keys newly held add their request keys in one index write.
   * Placeholders (no tokens) may name engine keys never stored with tokens: those are counted and skipped.
   */
  protected hold(endpoint: string, state: EndpointState, halves: Uint32Array, n: number, tier: number): void {
    const added = this.scratch.begin();
    const anchors = this.trackAnchors ? this.anchorScratch.begin() : undefined;
    for (let j = 0; j < 2 * n; j += 2) {
      const slot = state.map.slotOf(halves[j], halves[j + 1]);
      if (slot < 0) {
        this.counters.offloadUnknown++;
        continue;
      }
      this.holdAt(state, slot, halves[j], halves[j + 1], tier, added, anchors);
    }
    this.addHeld(endpoint, tier, added, anchors);
  }

  /**
   * Counts one store of the engine key at `slot` on the tier; when that makes it held there, collects its own request
   * keys and those of its spans that it completes.
   */
  protected holdAt(
    state: EndpointState,
    slot: number,
    lo: number,
    hi: number,
    tier: number,
    added: KeySink,
    anchors: KeySink | undefined,
  ): void {
    this.counters.blocksStored++;
    const map = state.map;
    if (map.addCountAt(slot, tier, 1) !== 1) {
      this.counters.duplicateStores++;
      state.ages?.touch(lo, hi, this.now);
      return;
    }
    map.requestKeysAt(slot, added, anchors);
    if (state.spans.size > 0) state.spans.completedBy(map, slot, lo, hi, tier, added, anchors);
    state.ages?.touch(lo, hi, this.now);
  }

  /** The index write for the request keys collected by holdAt(). */
  protected addHeld(endpoint: string, tier: number, added: KeyScratch, anchors: KeyScratch | undefined): void {
    if (added.length > 0) {
      this.writer.add(endpoint, this.tiers.name(tier), added.keys(), anchors?.keys());
      this.counters.requestKeysAdded += added.length;
    }
  }

  /**
   * Counts one removal of the engine key at `slot` (held on the tier); when it is no longer held there, collects its
   * own request keys and those of its spans indexed there. Forgets the key when no tier holds it. Invalidates slots.
   */
  protected releaseAt(
    state: EndpointState,
    slot: number,
    lo: number,
    hi: number,
    tier: number,
    removed: KeySink,
    anchors: KeySink | undefined,
  ): void {
    const map = state.map;
    if (map.addCountAt(slot, tier, -1) > 0) return;
    map.requestKeysAt(slot, removed, anchors);
    if (state.spans.size > 0) state.spans.brokenBy(map, slot, lo, hi, tier, removed, anchors);
    if (map.isUnheldAt(slot)) {
      if (state.spans.size > 0) state.spans.forgetKey(map, slot, lo, hi);
      map.forgetAt(slot);
      state.ages?.forget(lo, hi);
      if (state.chunks.size > 0) state.chunks.forget(join(lo, hi));
    }
  }

  /** One removal of each block of a lower-tier chunk removed by its key; blocks no longer held there are skipped. */
  protected releaseChunk(
    state: EndpointState,
    chunk: BigUint64Array,
    tier: number,
    removed: KeySink,
    anchors: KeySink | undefined,
  ): void {
    const halves = this.parent;
    for (const key of chunk) {
      const [lo, hi] = halves.loadOne(key);
      const slot = state.map.slotOf(lo, hi);
      if (slot < 0 || state.map.countAt(slot, tier) === 0) continue;
      this.counters.blocksRemoved++;
      this.releaseAt(state, slot, lo, hi, tier, removed, anchors);
    }
  }

  /** The index write for the request keys collected by releaseAt(). */
  protected removeReleased(endpoint: string, tier: number, removed: KeyScratch, anchors: KeyScratch | undefined): void {
    if (removed.length > 0) {
      this.writer.remove(endpoint, this.tiers.name(tier), removed.keys(), anchors?.keys());
      this.counters.requestKeysRemoved += removed.length;
    }
  }
}

function join(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}
