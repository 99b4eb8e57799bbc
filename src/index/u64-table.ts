/**
 * Open-addressing hash table from a uint64 key (as two uint32 halves) to a fixed number of uint32 value words,
 * all in one Uint32Array: no object, no bigint per entry. Linear probing with backward-shift deletion (no
 * tombstones). Slot numbers are valid only until the next insert or delete: callers read/modify and move on.
 */

const MIN_CAPACITY = 16;
const MAX_LOAD = 0.75;

export function mixKey(lo: number, hi: number): number {
  // Keys are FNV/engine hashes but may be crafted: mix both halves before taking low bits.
  let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 15;
  return Math.imul(h ^ hi, 0xc2b2ae35) ^ (h >>> 13);
}

export class U64Table {
  /** Per slot: [keyLo, keyHi, value words…]. */
  data: Uint32Array;
  private used: Uint8Array;
  private mask: number;
  private count = 0;
  readonly stride: number;

  constructor(readonly valueWords: number, initialCapacity = MIN_CAPACITY) {
    this.stride = 2 + valueWords;
    let cap = MIN_CAPACITY;
    while (cap < initialCapacity) cap *= 2;
    this.mask = cap - 1;
    this.data = new Uint32Array(cap * this.stride);
    this.used = new Uint8Array(cap);
  }

  get size(): number {
    return this.count;
  }

  get byteLength(): number {
    return this.data.byteLength + this.used.byteLength;
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

  find(lo: number, hi: number): number {
    const d = this.data;
    const s = this.stride;
    let slot = mixKey(lo, hi) & this.mask;
    while (this.used[slot] !== 0) {
      const o = slot * s;
      if (d[o] === lo && d[o + 1] === hi) return slot;
      slot = (slot + 1) & this.mask;
    }
    return -1;
  }

  /** Slot of the key, inserted with zeroed values when absent (check `size` before/after to know which). */
  insert(lo: number, hi: number): number {
    if ((this.count + 1) > (this.mask + 1) * MAX_LOAD) this.grow();
    const d = this.data;
    const s = this.stride;
    let slot = mixKey(lo, hi) & this.mask;
    while (this.used[slot] !== 0) {
      const o = slot * s;
      if (d[o] === lo && d[o + 1] === hi) return slot;
      slot = (slot + 1) & this.mask;
    }
    this.used[slot] = 1;
    const o = slot * s;
    d[o] = lo;
    d[o + 1] = hi;
    d.fill(0, o + 2, o + s);
    this.count++;
    return slot;
  }

  delete(slot: number): void {
    const d = this.data;
    const s = this.stride;
    const mask = this.mask;
    let hole = slot;
    let next = (hole + 1) & mask;
    // Backward shift: move later members of the probe run into the hole when their home allows it.
    while (this.used[next] !== 0) {
      const home = mixKey(d[next * s], d[next * s + 1]) & mask;
      const distNext = (next - home) & mask;
      const distHole = (hole - home) & mask;
      if (distHole < distNext || distHole === distNext) {
        d.copyWithin(hole * s, next * s, next * s + s);
        hole = next;
      }
      next = (next + 1) & mask;
    }
    this.used[hole] = 0;
    this.count--;
  }

  clear(): void {
    this.mask = MIN_CAPACITY - 1;
    this.data = new Uint32Array(MIN_CAPACITY * this.stride);
    this.used = new Uint8Array(MIN_CAPACITY);
    this.count = 0;
  }

  /** Visit every occupied slot (do not insert or delete while iterating). */
  forEachSlot(visit: (slot: number) => void): void {
    for (let slot = 0; slot <= this.mask; slot++) if (this.used[slot] !== 0) visit(slot);
  }

  private grow(): void {
    const oldData = this.data;
    const oldUsed = this.used;
    const s = this.stride;
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.data = new Uint32Array(cap * s);
    this.used = new Uint8Array(cap);
    const data = this.data;
    const used = this.used;
    const mask = this.mask;
    for (let old = 0; old < oldUsed.length; old++) {
      if (oldUsed[old] === 0) continue;
      const o = old * s;
      let slot = mixKey(oldData[o], oldData[o + 1]) & mask;
      while (used[slot] !== 0) slot = (slot + 1) & mask;
      used[slot] = 1;
      // Word by word: a subarray per entry would allocate on every rehash.
      const n = slot * s;
      for (let w = 0; w < s; w++) data[n + w] = oldData[o + w];
    }
  }
}
