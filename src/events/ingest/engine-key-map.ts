import { fromHalves, hi32, lo32 } from '../../common/index.js';
import { U64Table } from '../../index/table/u64-table.js';

/**
 * One endpoint's bridge from engine keys (the hashes vLLM publishes) to request keys (ours), plus per-tier store
 * counts (spec/block-keys.md, "Events → request keys"). Engine keys are per engine process, so each endpoint gets
 * its own table and clearing an endpoint is O(1).
 *
 * Per engine key, four uint32 words: a request key (lo, hi), flags, and store counts for the four commonest tiers (one
 * byte each). The request key is both what the engine key maps to and, when its block ends on a canonical boundary,
 * where a child chain continues. Rare shapes live in side maps keyed by the engine key: several request keys (engine
 * block larger than the canonical block), counts on tiers ≥ 4, and the leftover tokens of an event that ended inside a
 * canonical block. Hot paths take keys as uint32 halves (lo, hi): no bigint per block.
 */

const W_REQ_LO = 0;
const W_REQ_HI = 1;
const W_FLAGS = 2;
const W_COUNTS = 3;
/** Only when anchors are tracked: the request key of block 0 of the engine key's chain. */
const W_ANCHOR_LO = 4;
const W_ANCHOR_HI = 5;

/** The engine key maps to exactly the request key in (reqLo, reqHi). */
const F_MAPPED_ONE = 1;
/** The engine key maps to the request keys kept in `manyKeys`. */
const F_MAPPED_MANY = 2;
/** The engine block ends on a canonical block boundary: a child chain continues from (reqLo, reqHi). */
const F_ALIGNED = 4;

/** Bits of the flags word that hold flags; the bits above hold the engine key's span link (spanLinkAt). */
const FLAG_BITS = 3;
const FLAG_MASK = (1 << FLAG_BITS) - 1;

const COUNTED_IN_WORD = 4;
const COUNT_MAX = 255;

/** Tokens after the last full canonical block of an event, so that the next event can complete that block. */
export interface ChainLeftover {
  /** Request key of the last full canonical block before the leftover (or the chain's root). */
  base: bigint;
  tokens: Uint32Array;
  /** Identifier ranges over the leftover tokens. */
  extras: readonly LeftoverExtra[];
  /** Request key of the chain's block 0, or null while the chain has no complete canonical block (or untracked). */
  anchor: bigint | null;
  /**
   * The engine blocks whose tokens overlap the leftover, as [lo, hi, start, end, …] with token offsets relative to the
   * leftover's first token (start may be negative): they are pieces of the canonical block the next event completes.
   */
  pieces: readonly number[];
}

export interface LeftoverExtra {
  start: number;
  end: number;
  ids: readonly string[];
  /**
   * Per id: where its item starts relative to the leftover (negative when it began earlier), or null for a bare
   * identifier without an offset. Lets the next event recognise the same item when it continues.
   */
  itemStarts: readonly (number | null)[];
}

/**
 * How a child event continues from a parent engine key: the request key it chains from (as uint32 halves), the
 * parent's leftover tokens if any, and the chain anchor (see ChainLeftover.anchor). One reused instance per map, so
 * continuing a chain allocates nothing: read it before the next chainStart() call.
 */
export class ChainStart {
  baseLo = 0;
  baseHi = 0;
  leftover: ChainLeftover | null = null;
  /** False when the chain has no anchor (yet), or anchors are not tracked. */
  hasAnchor = false;
  anchorLo = 0;
  anchorHi = 0;
}

/**
 * One engine key seen in a store, as define() takes it: the engine key maps to request keys [first, end) of `keys`
 * (uint32 halves, [lo0, hi0, lo1, hi1, …]), and a child continues from keys[chainIndex] (−1: the block ends inside a
 * canonical block, and `leftover`, when set, holds what the next event needs to complete it). The ingestor reuses one
 * entry for every block of an event (newEngineKeyEntry), so defining a block allocates nothing.
 */
export interface EngineKeyEntry {
  /** The engine key, as uint32 halves. */
  lo: number;
  hi: number;
  keys: Uint32Array;
  first: number;
  end: number;
  chainIndex: number;
  leftover: ChainLeftover | null;
  /** Request key of the chain's block 0 (kept only when the map tracks anchors). */
  anchorLo: number;
  anchorHi: number;
}

const NO_KEYS = new Uint32Array(0);

/** An entry for an engine key with no request keys, no chain continuation and no leftover, to fill in and reuse. */
export function newEngineKeyEntry(): EngineKeyEntry {
  return { lo: 0, hi: 0, keys: NO_KEYS, first: 0, end: 0, chainIndex: -1, leftover: null, anchorLo: 0, anchorHi: 0 };
}

/** A sink for request keys as uint32 halves. */
export interface KeySink {
  pushHalves(lo: number, hi: number): void;
  pushKeys(keys: BigUint64Array): void;
}

export class EngineKeyMap {
  /** Largest span link the flags word holds (spanLinkAt). */
  static readonly MAX_SPAN_LINK = 2 ** (32 - FLAG_BITS) - 1;

  private readonly table: U64Table;

  /** `trackAnchors`: also keep each engine key's chain anchor (for sharded remote indexes; 8 bytes per key more). */
  constructor(readonly trackAnchors = false) {
    this.table = new U64Table(trackAnchors ? 6 : 4);
  }

  private readonly manyKeys = new Map<bigint, BigUint64Array>();
  private readonly rareCounts = new Map<bigint, Map<number, number>>();
  private readonly leftovers = new Map<bigint, ChainLeftover>();
  private readonly start = new ChainStart();
  /** What U64Table.warm() read, kept so that its reads are not optimised away. */
  private warmMix = 0;

  get size(): number {
    return this.table.size;
  }

  get byteLength(): number {
    return this.table.byteLength + this.manyKeys.size * 96 + this.leftovers.size * 160;
  }

  /** Slot of an engine key, or −1. Valid until the next define() or forget(). */
  slotOf(lo: number, hi: number): number {
    return this.table.find(lo, hi);
  }

  /**
   * Touches the slots of the n engine keys in `halves` ([lo0, hi0, lo1, hi1, …]) with their cache misses overlapping
   * (U64Table.warm), so that the probes for these keys that follow find their slots in cache. Changes nothing.
   */
  warm(halves: Uint32Array, n: number): void {
    this.warmMix ^= this.table.warm(halves, 0, n);
  }

  /**
   * True when all n engine keys in `halves` are known. Warms their slots first, for the probes here and the define()
   * or slotOf() calls that follow.
   */
  allKnown(halves: Uint32Array, n: number): boolean {
    this.warm(halves, n);
    const table = this.table;
    for (let j = 0; j < 2 * n; j += 2) if (table.find(halves[j], halves[j + 1]) < 0) return false;
    return true;
  }

  /**
   * Records an engine key seen in a store (see EngineKeyEntry). An engine key that is already known keeps its first
   * mapping (its counts are what change). Returns the key's slot, valid until the next define() or forgetAt(), so that
   * the caller can count the store without probing again.
   */
  define(entry: EngineKeyEntry): number {
    const { lo, hi, keys, first, end, chainIndex, leftover } = entry;
    const before = this.table.size;
    const slot = this.table.insert(lo, hi);
    if (this.table.size === before) return slot;
    const d = this.table.data;
    const v = this.table.valueAt(slot);
    let flags = 0;
    // One word pair holds both the mapping and the chain key when they agree (the common case); else the side map.
    if (end - first === 1 && (chainIndex < 0 || chainIndex === first)) {
      flags |= F_MAPPED_ONE;
      d[v + W_REQ_LO] = keys[first * 2];
      d[v + W_REQ_HI] = keys[first * 2 + 1];
    } else if (end > first) {
      flags |= F_MAPPED_MANY;
      this.manyKeys.set(fromHalves(lo, hi), new BigUint64Array(keys.slice(first * 2, end * 2).buffer));
    }
    if (chainIndex >= 0) {
      flags |= F_ALIGNED;
      d[v + W_REQ_LO] = keys[chainIndex * 2];
      d[v + W_REQ_HI] = keys[chainIndex * 2 + 1];
    }
    d[v + W_FLAGS] = flags;
    if (this.trackAnchors) {
      d[v + W_ANCHOR_LO] = entry.anchorLo;
      d[v + W_ANCHOR_HI] = entry.anchorHi;
    }
    if (leftover) this.leftovers.set(fromHalves(lo, hi), leftover);
    return slot;
  }

  /**
   * Appends the request keys the engine key at `slot` maps to (none when it completed no canonical block), and, with
   * `anchors`, the chain anchor once per key appended.
   */
  requestKeysAt(slot: number, sink: KeySink, anchors?: KeySink): number {
    const d = this.table.data;
    const v = this.table.valueAt(slot);
    const flags = d[v + W_FLAGS];
    let n = 0;
    if (flags & F_MAPPED_ONE) {
      sink.pushHalves(d[v + W_REQ_LO], d[v + W_REQ_HI]);
      n = 1;
    } else if (flags & F_MAPPED_MANY) {
      const keys = this.manyKeys.get(fromHalves(this.table.keyLo(slot), this.table.keyHi(slot)));
      if (keys) sink.pushKeys(keys);
      n = keys?.length ?? 0;
    }
    if (anchors && this.trackAnchors)
      for (let i = 0; i < n; i++) anchors.pushHalves(d[v + W_ANCHOR_LO], d[v + W_ANCHOR_HI]);
    return n;
  }

  /**
   * Where a child of the engine key (lo, hi) starts hashing; null when the key is unknown or cannot be continued.
   * The result is reused by the next call.
   */
  chainStart(lo: number, hi: number): ChainStart | null {
    const slot = this.table.find(lo, hi);
    if (slot < 0) return null;
    const v = this.table.valueAt(slot);
    const d = this.table.data;
    const start = this.start;
    if (d[v + W_FLAGS] & F_ALIGNED) {
      start.baseLo = d[v + W_REQ_LO];
      start.baseHi = d[v + W_REQ_HI];
      start.leftover = null;
      start.hasAnchor = this.trackAnchors;
      start.anchorLo = this.trackAnchors ? d[v + W_ANCHOR_LO] : 0;
      start.anchorHi = this.trackAnchors ? d[v + W_ANCHOR_HI] : 0;
      return start;
    }
    const leftover = this.leftovers.size > 0 ? this.leftovers.get(fromHalves(lo, hi)) : undefined;
    if (!leftover) return null;
    start.baseLo = lo32(leftover.base);
    start.baseHi = hi32(leftover.base);
    start.leftover = leftover;
    start.hasAnchor = leftover.anchor !== null;
    start.anchorLo = leftover.anchor === null ? 0 : lo32(leftover.anchor);
    start.anchorHi = leftover.anchor === null ? 0 : hi32(leftover.anchor);
    return start;
  }

  /**
   * The engine key's span link: 0, or a number in [1, MAX_SPAN_LINK] that ingest's span table keeps there (1 + the id
   * of the first span the key is a piece of). Stored in the flags word's free bits, so that linking an engine key to
   * its span costs no memory and no probe beyond the key's own slot. A new key's link is 0; forgetAt() drops it.
   */
  spanLinkAt(slot: number): number {
    return this.table.data[this.table.valueAt(slot) + W_FLAGS] >>> FLAG_BITS;
  }

  /** Sets the span link at `slot` (0 ≤ link ≤ MAX_SPAN_LINK; see spanLinkAt). */
  setSpanLinkAt(slot: number, link: number): void {
    const at = this.table.valueAt(slot) + W_FLAGS;
    this.table.data[at] = ((this.table.data[at] & FLAG_MASK) | (link << FLAG_BITS)) >>> 0;
  }

  /** Store count of the engine key at `slot` on a tier. */
  countAt(slot: number, tier: number): number {
    if (tier < COUNTED_IN_WORD) return (this.table.data[this.table.valueAt(slot) + W_COUNTS] >>> (tier * 8)) & 0xff;
    return this.rareCounts.get(this.keyAt(slot))?.get(tier) ?? 0;
  }

  /**
   * Adds `delta` (±1) to the store count at `slot` on a tier and returns the new count. Counts saturate at 255 on the
   * common tiers: a block stored that often stays until its endpoint is cleared.
   */
  addCountAt(slot: number, tier: number, delta: 1 | -1): number {
    if (tier < COUNTED_IN_WORD) {
      const at = this.table.valueAt(slot) + W_COUNTS;
      const word = this.table.data[at];
      const shift = tier * 8;
      const current = (word >>> shift) & 0xff;
      if (current === COUNT_MAX) return COUNT_MAX;
      const next = Math.max(0, current + delta);
      this.table.data[at] = ((word & ~(0xff << shift)) | (next << shift)) >>> 0;
      return next;
    }
    const key = this.keyAt(slot);
    let tiers = this.rareCounts.get(key);
    const next = Math.max(0, (tiers?.get(tier) ?? 0) + delta);
    if (next > 0) {
      if (!tiers) this.rareCounts.set(key, (tiers = new Map()));
      tiers.set(tier, next);
    } else if (tiers) {
      tiers.delete(tier);
      if (tiers.size === 0) this.rareCounts.delete(key);
    }
    return next;
  }

  /** Lowers the count at `slot` on a tier to 1 when it is higher (saturated counts included): a last release follows. */
  clampCountToOneAt(slot: number, tier: number): void {
    if (this.countAt(slot, tier) <= 1) return;
    if (tier < COUNTED_IN_WORD) {
      const at = this.table.valueAt(slot) + W_COUNTS;
      const shift = tier * 8;
      this.table.data[at] = ((this.table.data[at] & ~(0xff << shift)) | (1 << shift)) >>> 0;
    } else this.rareCounts.get(this.keyAt(slot))!.set(tier, 1);
  }

  /** Bit t set for every tier t on which the engine key at `slot` has a positive count. */
  heldTiersAt(slot: number): number {
    const word = this.table.data[this.table.valueAt(slot) + W_COUNTS];
    let mask = 0;
    for (let t = 0; t < COUNTED_IN_WORD; t++) if ((word >>> (t * 8)) & 0xff) mask |= 1 << t;
    if (this.rareCounts.size > 0) {
      const rare = this.rareCounts.get(this.keyAt(slot));
      if (rare) for (const [t, n] of rare) if (n > 0) mask |= 1 << t;
    }
    return mask;
  }

  /** True when no tier holds the engine key at `slot` any more. */
  isUnheldAt(slot: number): boolean {
    if (this.table.data[this.table.valueAt(slot) + W_COUNTS] !== 0) return false;
    return this.rareCounts.size === 0 || !this.rareCounts.has(this.keyAt(slot));
  }

  /** Forgets the engine key at `slot` (its mapping, counts and leftover). Invalidates slots. */
  forgetAt(slot: number): void {
    const flags = this.table.data[this.table.valueAt(slot) + W_FLAGS];
    if ((flags & F_MAPPED_MANY) !== 0 || this.leftovers.size > 0 || this.rareCounts.size > 0) {
      const key = this.keyAt(slot);
      this.manyKeys.delete(key);
      this.rareCounts.delete(key);
      this.leftovers.delete(key);
    }
    this.table.delete(slot);
  }

  /** Visits every engine key (do not define or forget keys while visiting). */
  forEachKey(visit: (lo: number, hi: number) => void): void {
    this.table.forEachSlot((slot) => visit(this.table.keyLo(slot), this.table.keyHi(slot)));
  }

  clear(): void {
    this.table.clear();
    this.manyKeys.clear();
    this.rareCounts.clear();
    this.leftovers.clear();
  }

  private keyAt(slot: number): bigint {
    return fromHalves(this.table.keyLo(slot), this.table.keyHi(slot));
  }
}
