/**
 * Per endpoint id: a doubly linked list of its entries in recency order (least recently stored at the head), its entry
 * count and its count per tier. The lists thread through the entries' EP_PREV/EP_NEXT words, so clearing or evicting
 * from one endpoint touches only that endpoint's entries.
 */

import { MAX_TIERS } from '../tiers.js';
import { ENTRY_LAYOUT, type EntryPool } from './entry-pool.js';

const { CHUNK_MASK, CHUNK_SHIFT, ENTRY_WORDS, EP_NEXT, EP_PREV } = ENTRY_LAYOUT;

const TIER_STRIDE = 32;
const MIN_IDS = 16;

export class EndpointLists {
  head = new Uint32Array(MIN_IDS);
  tail = new Uint32Array(MIN_IDS);
  count = new Uint32Array(MIN_IDS);
  tierCounts = new Uint32Array(MIN_IDS * TIER_STRIDE);
  /** Endpoints holding at least one entry: the first `active` slots of activeIds, in no order. */
  active = 0;
  private activeIds = new Uint32Array(MIN_IDS);
  /** Endpoint id → its slot in activeIds + 1 (0 = not active). */
  private activeSlot = new Uint32Array(MIN_IDS);

  constructor(private readonly pool: EntryPool) {
    if (MAX_TIERS > TIER_STRIDE) throw new Error('tier counts stride too small');
  }

  /** Make room for endpoint ids below bound. */
  ensure(bound: number): void {
    if (bound <= this.head.length) return;
    let n = this.head.length;
    while (n < bound) n *= 2;
    this.head = grow(this.head, n);
    this.tail = grow(this.tail, n);
    this.count = grow(this.count, n);
    this.tierCounts = grow(this.tierCounts, n * TIER_STRIDE);
    this.activeIds = grow(this.activeIds, n);
    this.activeSlot = grow(this.activeSlot, n);
  }

  append(id: number, e: number, tier: number): void {
    const chunks = this.pool.chunks;
    const c = chunks[e >>> CHUNK_SHIFT];
    const b = (e & CHUNK_MASK) * ENTRY_WORDS;
    const last = this.tail[id];
    c[b + EP_PREV] = last;
    c[b + EP_NEXT] = 0;
    if (last === 0) this.head[id] = e;
    else chunks[last >>> CHUNK_SHIFT][(last & CHUNK_MASK) * ENTRY_WORDS + EP_NEXT] = e;
    this.tail[id] = e;
    if (this.count[id]++ === 0) {
      this.activeIds[this.active] = id;
      this.activeSlot[id] = ++this.active;
    }
    this.tierCounts[id * TIER_STRIDE + tier]++;
  }

  unlink(id: number, e: number, tier: number): void {
    this.detach(id, e);
    if (--this.count[id] === 0) {
      const slot = this.activeSlot[id] - 1;
      const last = this.activeIds[--this.active];
      this.activeIds[slot] = last;
      this.activeSlot[last] = slot + 1;
      this.activeSlot[id] = 0;
    }
    this.tierCounts[id * TIER_STRIDE + tier]--;
  }

  /** Mark an entry as the endpoint's most recently stored one. */
  moveToTail(id: number, e: number): void {
    if (this.tail[id] === e) return;
    this.detach(id, e);
    const chunks = this.pool.chunks;
    const c = chunks[e >>> CHUNK_SHIFT];
    const b = (e & CHUNK_MASK) * ENTRY_WORDS;
    const last = this.tail[id];
    c[b + EP_PREV] = last;
    c[b + EP_NEXT] = 0;
    if (last === 0) this.head[id] = e;
    else chunks[last >>> CHUNK_SHIFT][(last & CHUNK_MASK) * ENTRY_WORDS + EP_NEXT] = e;
    this.tail[id] = e;
  }

  retier(id: number, from: number, to: number): void {
    this.tierCounts[id * TIER_STRIDE + from]--;
    this.tierCounts[id * TIER_STRIDE + to]++;
  }

  tierCount(id: number, tier: number): number {
    return this.tierCounts[id * TIER_STRIDE + tier];
  }

  /** The id with the most entries (lowest id on ties), or −1 when no endpoint holds any. O(active endpoints). */
  largest(): number {
    const count = this.count;
    const ids = this.activeIds;
    let best = -1;
    let most = 0;
    for (let i = 0; i < this.active; i++) {
      const id = ids[i];
      const n = count[id];
      if (n > most || (n === most && id < best)) {
        most = n;
        best = id;
      }
    }
    return best;
  }

  get bytes(): number {
    return (
      this.head.byteLength +
      this.tail.byteLength +
      this.count.byteLength +
      this.tierCounts.byteLength +
      this.activeIds.byteLength +
      this.activeSlot.byteLength
    );
  }

  clear(): void {
    this.head = new Uint32Array(MIN_IDS);
    this.tail = new Uint32Array(MIN_IDS);
    this.count = new Uint32Array(MIN_IDS);
    this.tierCounts = new Uint32Array(MIN_IDS * TIER_STRIDE);
    this.activeIds = new Uint32Array(MIN_IDS);
    this.activeSlot = new Uint32Array(MIN_IDS);
    this.active = 0;
  }

  private detach(id: number, e: number): void {
    const chunks = this.pool.chunks;
    const c = chunks[e >>> CHUNK_SHIFT];
    const b = (e & CHUNK_MASK) * ENTRY_WORDS;
    const prev = c[b + EP_PREV];
    const next = c[b + EP_NEXT];
    if (prev === 0) this.head[id] = next;
    else chunks[prev >>> CHUNK_SHIFT][(prev & CHUNK_MASK) * ENTRY_WORDS + EP_NEXT] = next;
    if (next === 0) this.tail[id] = prev;
    else chunks[next >>> CHUNK_SHIFT][(next & CHUNK_MASK) * ENTRY_WORDS + EP_PREV] = prev;
  }
}

function grow(a: Uint32Array, n: number): Uint32Array<ArrayBuffer> {
  const g = new Uint32Array(n);
  g.set(a);
  return g;
}
