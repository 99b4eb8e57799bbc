/**
 * The open-addressing core of every uint64-keyed table: a uint64 key (as two uint32 halves) to a fixed number of
 * uint32 value words, all in one Uint32Array: no object, no bigint per entry. Linear probing with backward-shift
 * deletion (no tombstones, so probe runs do not degrade under churn). Slot numbers are valid only until the next
 * insert or delete: callers read/modify and move on.
 *
 * A slot whose key words are both 0 is empty, so a probe reads one place in memory (no separate occupancy array,
 * which cost a second cache miss per probe). The key 0 itself (a legal engine hash) lives in one reserved extra slot
 * past the probed ones, at index `capacity`, with its own occupancy flag.
 *
 * Home slots come from the seeded mix (./mix.ts). A table used as one shard of several (`shift` > 0) takes its home
 * slot from the mix bits above the ones that chose the shard, so that the shard's keys still spread over its slots.
 */

import { prefaulted } from '../prefaulted.js';
import { mixKey, tableSeed } from './mix.js';

const MAX_LOAD = 0.75;

export interface U64TableOptions {
  /** Slots to start with (rounded up to a power of two, at least minCapacity). */
  initialCapacity?: number;
  /** Smallest capacity, a power of two (default 16); clear() returns to it. */
  minCapacity?: number;
  /** Halve the capacity when fewer than 1/8 of the slots are used (tables that grow and empty again). */
  shrink?: boolean;
  /** Mix seed; default the process seed (tableSeed()). */
  seed?: number;
  /** Mix bits a caller used to choose this table among shards; the home slot uses the bits above them. */
  shift?: number;
}

export class U64Table {
  /** Per slot: [keyLo, keyHi, value words…]; slots [0, capacity) are probed, slot `capacity` holds the key 0. */
  data: Uint32Array;
  private mask: number;
  private count = 0;
  /** Whether the reserved slot (index mask + 1) holds the key 0. */
  private zeroUsed = false;
  readonly stride: number;
  readonly seed: number;
  private readonly shift: number;
  private readonly minCapacity: number;
  private readonly shrink: boolean;

  constructor(
    readonly valueWords: number,
    options: U64TableOptions = {},
  ) {
    const minCapacity = options.minCapacity ?? 16;
    if (!Number.isInteger(minCapacity) || minCapacity < 2 || (minCapacity & (minCapacity - 1)) !== 0) {
      throw new RangeError(`minCapacity must be a power of two ≥ 2, got ${minCapacity}`);
    }
    this.stride = 2 + valueWords;
    this.seed = (options.seed ?? tableSeed()) >>> 0;
    this.shift = options.shift ?? 0;
    this.minCapacity = minCapacity;
    this.shrink = options.shrink ?? false;
    let cap = minCapacity;
    while (cap < (options.initialCapacity ?? 0)) cap *= 2;
    this.mask = cap - 1;
    this.data = new Uint32Array((cap + 1) * this.stride);
  }

  get size(): number {
    return this.count;
  }

  get byteLength(): number {
    return this.data.byteLength;
  }

  /** The mix of a key under this table's seed (shard choosers compute it once and pass it to the *Mixed calls). */
  mix(lo: number, hi: number): number {
    return mixKey(lo, hi, this.seed);
  }

  /** The slot where a probe for a key of mix `h` starts. */
  homeSlot(h: number): number {
    return (h >>> this.shift) & this.mask;
  }

  /** Offset in `data` of a slot's first value word. */
  valueAt(slot: number): number {
    return slot * this.stride + 2;
  }

  keyLo(slot: number): number {
    return this.data[slot * this.stride];
  }

  keyHi(slot: number): number {
    return this.data[slot * this.stride + 1];
  }

  /** Slot of the key, −1 when absent. */
  find(lo: number, hi: number): number {
    return this.findMixed(lo, hi, mixKey(lo, hi, this.seed));
  }

  /** find() for a caller that already has the key's mix `h`. */
  findMixed(lo: number, hi: number, h: number): number {
    if ((lo | hi) === 0) return this.zeroUsed ? this.mask + 1 : -1;
    const d = this.data;
    const s = this.stride;
    const mask = this.mask;
    let slot = (h >>> this.shift) & mask;
    for (;;) {
      const o = slot * s;
      const klo = d[o];
      const khi = d[o + 1];
      if (klo === lo && khi === hi) return slot;
      if ((klo | khi) === 0) return -1;
      slot = (slot + 1) & mask;
    }
  }

  /**
   * Reads the home slot of each key words[2i], words[2i+1] for i in [from, to) and returns a meaningless mix of what
   * it read. Nothing depends on a read (no branch, unlike a probe), so the CPU issues all of them at once and their
   * cache misses overlap; the probes that follow for the same keys then find their slots in cache.
   */
  warm(words: Uint32Array, from: number, to: number): number {
    const d = this.data;
    const s = this.stride;
    const mask = this.mask;
    const seed = this.seed;
    const shift = this.shift;
    let mix = 0;
    for (let i = from; i < to; i++) mix ^= d[((mixKey(words[2 * i], words[2 * i + 1], seed) >>> shift) & mask) * s];
    return mix;
  }

  /** Slot of the key, inserted with zeroed values when absent (check `size` before/after to know which). */
  insert(lo: number, hi: number): number {
    return this.insertMixed(lo, hi, mixKey(lo, hi, this.seed));
  }

  /** insert() for a caller that already has the key's mix `h`. */
  insertMixed(lo: number, hi: number, h: number): number {
    if ((lo | hi) === 0) return this.insertZero();
    if (this.count + 1 > (this.mask + 1) * MAX_LOAD) this.rehash((this.mask + 1) * 2);
    const d = this.data;
    const s = this.stride;
    const mask = this.mask;
    let slot = (h >>> this.shift) & mask;
    for (;;) {
      const o = slot * s;
      const klo = d[o];
      const khi = d[o + 1];
      if (klo === lo && khi === hi) return slot;
      if ((klo | khi) === 0) break;
      slot = (slot + 1) & mask;
    }
    // An empty slot's value words are already 0 (zeroed on allocation and when vacated).
    const o = slot * s;
    d[o] = lo;
    d[o + 1] = hi;
    this.count++;
    return slot;
  }

  delete(slot: number): void {
    const d = this.data;
    const s = this.stride;
    const mask = this.mask;
    this.count--;
    if (slot === mask + 1) {
      this.zeroUsed = false;
      for (let w = slot * s; w < slot * s + s; w++) d[w] = 0;
      return;
    }
    const seed = this.seed;
    const shift = this.shift;
    let hole = slot;
    let next = (hole + 1) & mask;
    // Backward shift: move later members of the probe run into the hole when their home allows it.
    for (;;) {
      const no = next * s;
      const klo = d[no];
      const khi = d[no + 1];
      if ((klo | khi) === 0) break;
      const home = (mixKey(klo, khi, seed) >>> shift) & mask;
      const distNext = (next - home) & mask;
      const distHole = (hole - home) & mask;
      if (distHole <= distNext) {
        // Word by word: copyWithin/fill are calls into the runtime that cost more than a few words' copy.
        const ho = hole * s;
        for (let w = 0; w < s; w++) d[ho + w] = d[no + w];
        hole = next;
      }
      next = (next + 1) & mask;
    }
    for (let w = hole * s; w < hole * s + s; w++) d[w] = 0;
    const cap = mask + 1;
    if (this.shrink && cap > this.minCapacity && this.count < cap >>> 3) this.rehash(cap >>> 1);
  }

  clear(): void {
    this.mask = this.minCapacity - 1;
    this.data = new Uint32Array((this.minCapacity + 1) * this.stride);
    this.count = 0;
    this.zeroUsed = false;
  }

  /** Visit every occupied slot (do not insert or delete while iterating). */
  forEachSlot(visit: (slot: number) => void): void {
    const d = this.data;
    const s = this.stride;
    for (let slot = 0; slot <= this.mask; slot++) if ((d[slot * s] | d[slot * s + 1]) !== 0) visit(slot);
    if (this.zeroUsed) visit(this.mask + 1);
  }

  private insertZero(): number {
    const slot = this.mask + 1;
    if (!this.zeroUsed) {
      // Its words are already 0 (zeroed on allocation, on delete and by rehash).
      this.zeroUsed = true;
      this.count++;
    }
    return slot;
  }

  /** Moves every key into a table of `cap` slots (growth ×2 above 3/4 load, shrinking ÷2 below 1/8). */
  private rehash(cap: number): void {
    const oldData = this.data;
    const oldCap = this.mask + 1;
    const s = this.stride;
    const mask = cap - 1;
    const seed = this.seed;
    const shift = this.shift;
    const data = prefaulted((cap + 1) * s);
    for (let old = 0; old < oldCap; old++) {
      const o = old * s;
      const lo = oldData[o];
      const hi = oldData[o + 1];
      if ((lo | hi) === 0) continue;
      let slot = (mixKey(lo, hi, seed) >>> shift) & mask;
      while ((data[slot * s] | data[slot * s + 1]) !== 0) slot = (slot + 1) & mask;
      // Word by word: a subarray per entry would allocate on every rehash.
      const n = slot * s;
      for (let w = 0; w < s; w++) data[n + w] = oldData[o + w];
    }
    // The key 0's reserved slot moves to the new end (its key words are 0 either way).
    for (let w = 2; w < s; w++) data[cap * s + w] = oldData[oldCap * s + w];
    this.data = data;
    this.mask = mask;
  }
}
