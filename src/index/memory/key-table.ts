/**
 * Request key → head entry, as shards of open-addressing hash tables. Each shard is one Uint32Array of 3-word slots
 * [keyLo, keyHi, headEntry]; headEntry 0 marks an empty slot. Linear probing, backward-shift deletion (no tombstones,
 * so probe lengths do not degrade under churn), growth ×2 above 0.75 load and shrinking ÷2 below 1/8.
 *
 * The two key halves are mixed with a per-instance random seed before choosing the shard (low bits) and the home slot
 * (the bits above), so keys crafted to share low bits do not pile into one probe run.
 */

import { prefaulted } from '../prefaulted.js';

const SLOT_WORDS = 3;
const MIN_SLOTS = 256;

export function mixKey(lo: number, hi: number, seed: number): number {
  let h = Math.imul(lo ^ seed, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16) ^ hi, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class KeyTable {
  private readonly tables: Uint32Array[] = [];
  /** Slot count − 1 per shard. */
  private readonly masks: Uint32Array;
  private readonly counts: Uint32Array;
  private readonly shardMask: number;
  private readonly shardBits: number;
  private readonly seed: number;
  private keys = 0;
  /**
   * The slot found by the last head() call (or the empty slot where its key would go), valid until the next
   * structural change; lets setHead() after head() skip the second probe.
   */
  private lastTable: Uint32Array | null = null;
  private lastBase = 0;
  private lastLo = 0;
  private lastHi = 0;

  constructor(shards: number, seed: number = (Math.random() * 0x100000000) >>> 0) {
    if (!Number.isInteger(shards) || shards < 1 || shards > 1 << 16 || (shards & (shards - 1)) !== 0) {
      throw new RangeError(`shards must be a power of two in [1, 65536], got ${shards}`);
    }
    this.shardMask = shards - 1;
    this.shardBits = 31 - Math.clz32(shards);
    this.seed = seed >>> 0;
    this.masks = new Uint32Array(shards);
    this.counts = new Uint32Array(shards);
    for (let s = 0; s < shards; s++) {
      this.tables.push(new Uint32Array(MIN_SLOTS * SLOT_WORDS));
      this.masks[s] = MIN_SLOTS - 1;
    }
  }

  /** The head entry of a key, 0 when the key is absent. */
  head(lo: number, hi: number): number {
    const h = mixKey(lo, hi, this.seed);
    const s = h & this.shardMask;
    const t = this.tables[s];
    const mask = this.masks[s];
    let pos = (h >>> this.shardBits) & mask;
    for (;;) {
      const b = pos * SLOT_WORDS;
      const head = t[b + 2];
      if (head === 0 || (t[b] === lo && t[b + 1] === hi)) {
        this.lastTable = t;
        this.lastBase = b;
        this.lastLo = lo;
        this.lastHi = hi;
        return head;
      }
      pos = (pos + 1) & mask;
    }
  }

  /**
   * Head entries of the keys words[2i], words[2i+1] for i in [from, to), into out[i − from]. A tight loop with no
   * dependency between keys, so the CPU overlaps several of the random slot reads that dominate a lookup.
   */
  heads(words: Uint32Array, from: number, to: number, out: Uint32Array): void {
    const tables = this.tables;
    const masks = this.masks;
    const shardMask = this.shardMask;
    const shift = this.shardBits;
    const seed = this.seed;
    for (let i = from; i < to; i++) {
      const lo = words[2 * i];
      const hi = words[2 * i + 1];
      const h = mixKey(lo, hi, seed);
      const s = h & shardMask;
      const t = tables[s];
      const mask = masks[s];
      let pos = (h >>> shift) & mask;
      let head: number;
      for (;;) {
        const b = pos * SLOT_WORDS;
        head = t[b + 2];
        if (head === 0 || (t[b] === lo && t[b + 1] === hi)) break;
        pos = (pos + 1) & mask;
      }
      out[i - from] = head;
    }
  }

  /**
   * Reads the home slot of each key words[2i], words[2i+1] for i in [from, to) and returns a meaningless mix of what
   * it read. Nothing depends on a read (no branch, unlike a probe), so the CPU issues all of them at once and their
   * cache misses overlap; the probes that follow for the same keys then find their slots in cache.
   */
  warm(words: Uint32Array, from: number, to: number): number {
    const tables = this.tables;
    const masks = this.masks;
    const shardMask = this.shardMask;
    const shift = this.shardBits;
    const seed = this.seed;
    let mix = 0;
    for (let i = from; i < to; i++) {
      const h = mixKey(words[2 * i], words[2 * i + 1], seed);
      const s = h & shardMask;
      mix ^= tables[s][((h >>> shift) & masks[s]) * SLOT_WORDS + 2];
    }
    return mix;
  }

  /** Set a key's head entry: inserts an absent key, deletes the key when head is 0. */
  setHead(lo: number, hi: number, head: number): void {
    if (this.lastTable === null || this.lastLo !== lo || this.lastHi !== hi) this.head(lo, hi);
    const t = this.lastTable as Uint32Array;
    const b = this.lastBase;
    if (t[b + 2] !== 0) {
      if (head !== 0) t[b + 2] = head;
      else this.deleteAt(lo, hi, t, b);
      return;
    }
    if (head === 0) return;
    const s = mixKey(lo, hi, this.seed) & this.shardMask;
    const slots = this.masks[s] + 1;
    if (this.counts[s] + 1 > (slots >>> 2) * 3) {
      this.resize(s, slots * 2);
      this.head(lo, hi);
      this.insertAt(s, this.lastTable as Uint32Array, this.lastBase, lo, hi, head);
    } else {
      this.insertAt(s, t, b, lo, hi, head);
    }
  }

  /** Distinct keys. */
  get size(): number {
    return this.keys;
  }

  get bytes(): number {
    let n = this.masks.byteLength + this.counts.byteLength;
    for (const t of this.tables) n += t.byteLength;
    return n;
  }

  clear(): void {
    for (let s = 0; s < this.tables.length; s++) {
      this.tables[s] = new Uint32Array(MIN_SLOTS * SLOT_WORDS);
      this.masks[s] = MIN_SLOTS - 1;
      this.counts[s] = 0;
    }
    this.keys = 0;
    this.lastTable = null;
  }

  private insertAt(s: number, t: Uint32Array, b: number, lo: number, hi: number, head: number): void {
    t[b] = lo;
    t[b + 1] = hi;
    t[b + 2] = head;
    this.counts[s]++;
    this.keys++;
    this.lastTable = null;
  }

  private deleteAt(lo: number, hi: number, t: Uint32Array, b: number): void {
    const h = mixKey(lo, hi, this.seed);
    const s = h & this.shardMask;
    const mask = this.masks[s];
    const shift = this.shardBits;
    const seed = this.seed;
    let i = b / SLOT_WORDS;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const jb = j * SLOT_WORDS;
      if (t[jb + 2] === 0) break;
      const home = (mixKey(t[jb], t[jb + 1], seed) >>> shift) & mask;
      // The entry at j may fill the hole at i only if its home is not cyclically inside (i, j].
      if (i <= j ? i < home && home <= j : i < home || home <= j) continue;
      const ib = i * SLOT_WORDS;
      t[ib] = t[jb];
      t[ib + 1] = t[jb + 1];
      t[ib + 2] = t[jb + 2];
      i = j;
    }
    const ib = i * SLOT_WORDS;
    t[ib] = 0;
    t[ib + 1] = 0;
    t[ib + 2] = 0;
    this.counts[s]--;
    this.keys--;
    this.lastTable = null;
    const slots = mask + 1;
    if (slots > MIN_SLOTS && this.counts[s] < slots >>> 3) this.resize(s, slots >>> 1);
  }

  private resize(s: number, slots: number): void {
    const old = this.tables[s];
    const t = prefaulted(slots * SLOT_WORDS);
    const mask = slots - 1;
    const shift = this.shardBits;
    const seed = this.seed;
    for (let b = 0; b < old.length; b += SLOT_WORDS) {
      const head = old[b + 2];
      if (head === 0) continue;
      const lo = old[b];
      const hi = old[b + 1];
      let pos = (mixKey(lo, hi, seed) >>> shift) & mask;
      while (t[pos * SLOT_WORDS + 2] !== 0) pos = (pos + 1) & mask;
      const nb = pos * SLOT_WORDS;
      t[nb] = lo;
      t[nb + 1] = hi;
      t[nb + 2] = head;
    }
    this.tables[s] = t;
    this.masks[s] = mask;
    this.lastTable = null;
  }
}
