/**
 * Request key → head entry, as shards of the open-addressing core (../table/u64-table.ts), one value word per key:
 * the head entry of the key's list in the entry pool (0 never stored: setHead(…, 0) deletes the key). Shards grow ×2
 * above 3/4 load and shrink ÷2 below 1/8, so a shard that empties gives its memory back.
 *
 * A key's seeded mix is computed once: its low bits choose the shard, the bits above choose the home slot in the
 * shard, so keys crafted to share low bits do not pile into one probe run.
 */

import { mixKey, tableSeed } from '../table/mix.js';
import { U64Table } from '../table/u64-table.js';

const MIN_SLOTS = 256;
/** Offset of the head word in a slot ([keyLo, keyHi, head]). */
const HEAD = 2;
const STRIDE = 3;

export class KeyTable {
  private readonly shards: U64Table[] = [];
  private readonly shardMask: number;
  private readonly seed: number;
  private keys = 0;
  /**
   * What the last head() call found (its shard and slot, −1 when absent), valid until the next structural change;
   * lets setHead() after head() skip the second probe when the key exists.
   */
  private lastShard: U64Table | null = null;
  private lastSlot = -1;
  private lastMix = 0;
  private lastLo = 0;
  private lastHi = 0;

  constructor(shards: number, seed: number = tableSeed()) {
    if (!Number.isInteger(shards) || shards < 1 || shards > 1 << 16 || (shards & (shards - 1)) !== 0) {
      throw new RangeError(`shards must be a power of two in [1, 65536], got ${shards}`);
    }
    this.shardMask = shards - 1;
    this.seed = seed >>> 0;
    const shift = 31 - Math.clz32(shards);
    for (let s = 0; s < shards; s++) {
      this.shards.push(new U64Table(1, { minCapacity: MIN_SLOTS, shrink: true, seed: this.seed, shift }));
    }
  }

  /** The head entry of a key, 0 when the key is absent. */
  head(lo: number, hi: number): number {
    const h = mixKey(lo, hi, this.seed);
    const t = this.shards[h & this.shardMask];
    const slot = t.findMixed(lo, hi, h);
    this.lastShard = t;
    this.lastSlot = slot;
    this.lastMix = h;
    this.lastLo = lo;
    this.lastHi = hi;
    return slot < 0 ? 0 : t.data[slot * STRIDE + HEAD];
  }

  /**
   * Head entries of the keys words[2i], words[2i+1] for i in [from, to), into out[i − from]. A tight loop with no
   * dependency between keys, so the CPU overlaps several of the random slot reads that dominate a lookup.
   */
  heads(words: Uint32Array, from: number, to: number, out: Uint32Array): void {
    const shards = this.shards;
    const shardMask = this.shardMask;
    const seed = this.seed;
    for (let i = from; i < to; i++) {
      const lo = words[2 * i];
      const hi = words[2 * i + 1];
      const h = mixKey(lo, hi, seed);
      const t = shards[h & shardMask];
      const slot = t.findMixed(lo, hi, h);
      out[i - from] = slot < 0 ? 0 : t.data[slot * STRIDE + HEAD];
    }
  }

  /**
   * Reads the home slot of each key words[2i], words[2i+1] for i in [from, to) and returns a meaningless mix of what
   * it read. Nothing depends on a read (no branch, unlike a probe), so the CPU issues all of them at once and their
   * cache misses overlap; the probes that follow for the same keys then find their slots in cache.
   */
  warm(words: Uint32Array, from: number, to: number): number {
    const shards = this.shards;
    const shardMask = this.shardMask;
    const seed = this.seed;
    let mix = 0;
    for (let i = from; i < to; i++) {
      const h = mixKey(words[2 * i], words[2 * i + 1], seed);
      const t = shards[h & shardMask];
      mix ^= t.data[t.homeSlot(h) * STRIDE + HEAD];
    }
    return mix;
  }

  /** Set a key's head entry: inserts an absent key, deletes the key when head is 0. */
  setHead(lo: number, hi: number, head: number): void {
    if (this.lastShard === null || this.lastLo !== lo || this.lastHi !== hi) this.head(lo, hi);
    const t = this.lastShard as U64Table;
    const slot = this.lastSlot;
    if (slot >= 0) {
      if (head !== 0) {
        t.data[slot * STRIDE + HEAD] = head;
        return;
      }
      t.delete(slot);
      this.keys--;
    } else {
      if (head === 0) return;
      const at = t.insertMixed(lo, hi, this.lastMix);
      t.data[at * STRIDE + HEAD] = head;
      this.keys++;
    }
    this.lastShard = null;
  }

  /** Distinct keys. */
  get size(): number {
    return this.keys;
  }

  get bytes(): number {
    let n = 0;
    for (const t of this.shards) n += t.byteLength;
    return n;
  }

  clear(): void {
    for (const t of this.shards) t.clear();
    this.keys = 0;
    this.lastShard = null;
  }
}
