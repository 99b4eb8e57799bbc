import { U64Table } from './u64-table.js';

/**
 * One endpoint's bridge from engine keys (the hashes vLLM publishes) to request keys (ours), plus per-tier store
 * counts (spec/block-keys.md, "Events → request keys"). Engine keys are per engine process, so each endpoint gets
 * its own table and clearing an endpoint is O(1).
 *
 * Per engine key, four uint32 words: the request key to continue a chain from (lo, hi), flags, and store counts for
 * the four commonest tiers (one byte each). Rare shapes live in side maps keyed by the engine key: several request
 * keys (engine block larger than the canonical block), counts on tiers ≥ 4, and the leftover tokens of an event
 * that ended inside a canonical block.
 */

const W_REQ_LO = 0;
const W_REQ_HI = 1;
const W_FLAGS = 2;
const W_COUNTS = 3;

/** The engine key maps to exactly the request key in (reqLo, reqHi). */
const F_MAPPED_ONE = 1;
/** The engine key maps to several request keys, kept in `manyKeys`. */
const F_MAPPED_MANY = 2;
/** The engine block ends on a canonical block boundary: a child chain continues from (reqLo, reqHi). */
const F_ALIGNED = 4;

const COUNTED_IN_WORD = 4;
const COUNT_MAX = 255;

/** Tokens after the last full canonical block of an event, so that the next event can complete that block. */
export interface ChainLeftover {
  /** Request key of the last full canonical block before the leftover (or the chain's root). */
  base: bigint;
  tokens: Uint32Array;
  /** Identifiers per leftover token range: [start, end) relative to the leftover, with the ids in order. */
  extras: readonly LeftoverExtra[];
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

/** How a child event continues from a parent engine key. */
export type ChainStart = { base: bigint; leftover: ChainLeftover | null } | null;

export class EngineKeyMap {
  private readonly table = new U64Table(4);
  private readonly manyKeys = new Map<bigint, BigUint64Array>();
  private readonly rareCounts = new Map<bigint, Map<number, number>>();
  private readonly leftovers = new Map<bigint, ChainLeftover>();

  get size(): number {
    return this.table.size;
  }

  get byteLength(): number {
    return this.table.byteLength + this.manyKeys.size * 96 + this.leftovers.size * 160;
  }

  has(engineKey: bigint): boolean {
    return this.find(engineKey) >= 0;
  }

  /**
   * Records an engine key seen in a store: its request keys and how a child continues from it. An engine key that
   * is already known keeps its first mapping (its count is what changes). Returns true when it was new.
   */
  define(engineKey: bigint, requestKeys: BigUint64Array, chainKey: bigint | null, leftover: ChainLeftover | null): boolean {
    const lo = Number(engineKey & 0xffffffffn);
    const hi = Number(engineKey >> 32n);
    const before = this.table.size;
    const slot = this.table.insert(lo, hi);
    if (this.table.size === before) return false;
    const d = this.table.data;
    const v = this.table.valueAt(slot);
    let flags = 0;
    // One word pair holds both the mapping and the chain key when they agree (the common case); else use the side map.
    if (requestKeys.length === 1 && (chainKey === null || chainKey === requestKeys[0])) {
      flags |= F_MAPPED_ONE;
      d[v + W_REQ_LO] = Number(requestKeys[0] & 0xffffffffn);
      d[v + W_REQ_HI] = Number(requestKeys[0] >> 32n);
    } else if (requestKeys.length > 0) {
      flags |= F_MAPPED_MANY;
      this.manyKeys.set(engineKey, requestKeys.slice());
    }
    if (chainKey !== null) {
      flags |= F_ALIGNED;
      d[v + W_REQ_LO] = Number(chainKey & 0xffffffffn);
      d[v + W_REQ_HI] = Number(chainKey >> 32n);
    }
    d[v + W_FLAGS] = flags;
    if (leftover) this.leftovers.set(engineKey, leftover);
    return true;
  }

  /** Request keys the engine key maps to (empty when its tokens completed no canonical block). */
  requestKeys(engineKey: bigint): BigUint64Array {
    const slot = this.find(engineKey);
    if (slot < 0) return EMPTY;
    const flags = this.table.data[this.table.valueAt(slot) + W_FLAGS];
    if (flags & F_MAPPED_MANY) return this.manyKeys.get(engineKey) ?? EMPTY;
    if (flags & F_MAPPED_ONE) {
      const v = this.table.valueAt(slot);
      return BigUint64Array.of(joinKey(this.table.data[v + W_REQ_LO], this.table.data[v + W_REQ_HI]));
    }
    return EMPTY;
  }

  /** Where a child of this engine key starts hashing; null when the key is unknown or cannot be continued. */
  chainStart(engineKey: bigint): ChainStart {
    const slot = this.find(engineKey);
    if (slot < 0) return null;
    const v = this.table.valueAt(slot);
    const d = this.table.data;
    if (d[v + W_FLAGS] & F_ALIGNED) return { base: joinKey(d[v + W_REQ_LO], d[v + W_REQ_HI]), leftover: null };
    const leftover = this.leftovers.get(engineKey);
    return leftover ? { base: leftover.base, leftover } : null;
  }

  /** Store count of the engine key on a tier (0 when unknown). */
  count(engineKey: bigint, tier: number): number {
    const slot = this.find(engineKey);
    if (slot < 0) return 0;
    if (tier < COUNTED_IN_WORD) return (this.table.data[this.table.valueAt(slot) + W_COUNTS] >>> (tier * 8)) & 0xff;
    return this.rareCounts.get(engineKey)?.get(tier) ?? 0;
  }

  /**
   * Adds `delta` (±1) to the engine key's store count on a tier and returns the new count (−1 when the key is
   * unknown). Counts saturate at 255 on the common tiers: a block stored that often stays until cleared.
   */
  addCount(engineKey: bigint, tier: number, delta: 1 | -1): number {
    const slot = this.find(engineKey);
    if (slot < 0) return -1;
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
    let tiers = this.rareCounts.get(engineKey);
    const next = Math.max(0, (tiers?.get(tier) ?? 0) + delta);
    if (next > 0) {
      if (!tiers) this.rareCounts.set(engineKey, (tiers = new Map()));
      tiers.set(tier, next);
    } else if (tiers) {
      tiers.delete(tier);
      if (tiers.size === 0) this.rareCounts.delete(engineKey);
    }
    return next;
  }

  /** True when no tier holds the engine key any more. */
  isUnheld(engineKey: bigint): boolean {
    const slot = this.find(engineKey);
    if (slot < 0) return true;
    return this.table.data[this.table.valueAt(slot) + W_COUNTS] === 0 && !this.rareCounts.has(engineKey);
  }

  /** Forgets the engine key (its mapping, counts and leftover). */
  forget(engineKey: bigint): void {
    const slot = this.find(engineKey);
    if (slot < 0) return;
    this.table.delete(slot);
    this.manyKeys.delete(engineKey);
    this.rareCounts.delete(engineKey);
    this.leftovers.delete(engineKey);
  }

  clear(): void {
    this.table.clear();
    this.manyKeys.clear();
    this.rareCounts.clear();
    this.leftovers.clear();
  }

  private find(engineKey: bigint): number {
    return this.table.find(Number(engineKey & 0xffffffffn), Number(engineKey >> 32n));
  }
}

const EMPTY = new BigUint64Array(0);

function joinKey(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}
