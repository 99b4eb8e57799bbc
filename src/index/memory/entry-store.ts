/**
 * The entry operations behind MemoryIndex: one (request key, endpoint, tier) entry at a time, over the key table, the
 * entry pool, the per-endpoint recency lists and the expiry queue. Callers validate; nothing here throws on input.
 *
 * Invariant: an endpoint holds a key either speculatively (one entry, tier GPU, flagged) or through confirmed entries
 * (one per tier), never both — reserve skips keys already held and a confirming add converts the speculative entry.
 *
 * Eviction policy (when a new entry would exceed maxEntries): evict the oldest (least recently stored) entry of the
 * endpoint that currently holds the most entries, speculative ones included; ties go to the lowest endpoint id.
 * Taking from the largest endpoint keeps the bound fair across endpoints, and taking its least recently stored entry
 * approximates the engine's own LRU (an engine re-storing a block moves it to the tail of its list).
 */

import { GPU_TIER } from '../tiers.js';
import { EndpointLists } from './endpoint-lists.js';
import { ENTRY_LAYOUT, EntryPool } from './entry-pool.js';
import { ExpiryQueue } from './expiry-queue.js';
import { KeyTable } from './key-table.js';

const {
  CHUNK_MASK,
  CHUNK_SHIFT,
  ENDPOINT_MASK,
  ENTRY_WORDS,
  EP_NEXT,
  FLAG_SPECULATIVE,
  KEY_HI,
  KEY_LO,
  MAX_REFS,
  META,
  NEXT_FOR_KEY,
  REFS,
  TIER_MASK,
  TIER_SHIFT,
} = ENTRY_LAYOUT;
const GPU = GPU_TIER;

function packMeta(endpoint: number, tier: number, flags: number): number {
  return (endpoint | (tier << TIER_SHIFT) | flags) >>> 0;
}

export class EntryStore {
  readonly pool = new EntryPool();
  readonly table: KeyTable;
  readonly lists: EndpointLists;
  readonly expiry = new ExpiryQueue();
  evictions = 0;

  constructor(
    readonly maxEntries: number,
    shards: number,
  ) {
    this.table = new KeyTable(shards);
    this.lists = new EndpointLists(this.pool);
  }

  /** +1 reference on (key, id, tier); converts the endpoint's speculative entry for the key. */
  add(lo: number, hi: number, id: number, tier: number): void {
    const chunks = this.pool.chunks;
    let head = this.table.head(lo, hi);
    for (let e = head; e !== 0;) {
      const c = chunks[e >>> CHUNK_SHIFT];
      const b = (e & CHUNK_MASK) * ENTRY_WORDS;
      const meta = c[b + META];
      if ((meta & ENDPOINT_MASK) === id) {
        if ((meta & FLAG_SPECULATIVE) !== 0) {
          c[b + META] = packMeta(id, tier, 0);
          c[b + REFS] = 1;
          this.expiry.delete(e);
          this.lists.retier(id, GPU, tier);
          this.lists.moveToTail(id, e);
          return;
        }
        if (((meta >>> TIER_SHIFT) & TIER_MASK) === tier) {
          if (c[b + REFS] !== MAX_REFS) c[b + REFS]++;
          this.lists.moveToTail(id, e);
          return;
        }
      }
      e = c[b + NEXT_FOR_KEY];
    }
    if (this.pool.size >= this.maxEntries) {
      this.evictOne();
      head = this.table.head(lo, hi);
    }
    this.insert(lo, hi, head, packMeta(id, tier, 0), id, tier);
  }

  /** −1 reference on the confirmed (key, id, tier) entry; false when there is none. */
  remove(lo: number, hi: number, id: number, tier: number): boolean {
    const chunks = this.pool.chunks;
    const want = packMeta(id, tier, 0);
    let prev = 0;
    for (let e = this.table.head(lo, hi); e !== 0;) {
      const c = chunks[e >>> CHUNK_SHIFT];
      const b = (e & CHUNK_MASK) * ENTRY_WORDS;
      const next = c[b + NEXT_FOR_KEY];
      if (c[b + META] === want) {
        if (--c[b + REFS] === 0) this.dropLinked(lo, hi, e, prev, next, id, tier);
        return true;
      }
      prev = e;
      e = next;
    }
    return false;
  }

  /** A speculative entry for (key, id) unless the endpoint holds the key; extends an existing one's expiry. */
  reserve(lo: number, hi: number, id: number, expiresAt: number): void {
    const chunks = this.pool.chunks;
    let head = this.table.head(lo, hi);
    for (let e = head; e !== 0;) {
      const c = chunks[e >>> CHUNK_SHIFT];
      const b = (e & CHUNK_MASK) * ENTRY_WORDS;
      const meta = c[b + META];
      if ((meta & ENDPOINT_MASK) === id) {
        if ((meta & FLAG_SPECULATIVE) === 0) return;
        if (expiresAt > (this.expiry.get(e) as number)) this.expiry.set(e, expiresAt);
        this.lists.moveToTail(id, e);
        return;
      }
      e = c[b + NEXT_FOR_KEY];
    }
    if (this.pool.size >= this.maxEntries) {
      this.evictOne();
      head = this.table.head(lo, hi);
    }
    const e = this.insert(lo, hi, head, packMeta(id, GPU, FLAG_SPECULATIVE), id, GPU);
    this.expiry.set(e, expiresAt);
  }

  /** Drops the endpoint's speculative entry for the key; true when one was dropped that had not expired at now. */
  release(lo: number, hi: number, id: number, now: number): boolean {
    const chunks = this.pool.chunks;
    let prev = 0;
    for (let e = this.table.head(lo, hi); e !== 0;) {
      const c = chunks[e >>> CHUNK_SHIFT];
      const b = (e & CHUNK_MASK) * ENTRY_WORDS;
      const meta = c[b + META];
      const next = c[b + NEXT_FOR_KEY];
      if ((meta & ENDPOINT_MASK) === id) {
        if ((meta & FLAG_SPECULATIVE) === 0) return false;
        const live = (this.expiry.get(e) as number) > now;
        this.dropLinked(lo, hi, e, prev, next, id, GPU);
        return live;
      }
      prev = e;
      e = next;
    }
    return false;
  }

  /** Drops every entry of an endpoint; cost proportional to its entries. */
  clear(id: number): void {
    const chunks = this.pool.chunks;
    for (let e = this.lists.head[id]; e !== 0;) {
      const next = chunks[e >>> CHUNK_SHIFT][(e & CHUNK_MASK) * ENTRY_WORDS + EP_NEXT];
      this.drop(e);
      e = next;
    }
  }

  /** Drops one entry wherever it is linked. */
  drop(e: number): void {
    const chunks = this.pool.chunks;
    const c = chunks[e >>> CHUNK_SHIFT];
    const b = (e & CHUNK_MASK) * ENTRY_WORDS;
    const lo = c[b + KEY_LO];
    const hi = c[b + KEY_HI];
    const meta = c[b + META];
    let prev = 0;
    let cur = this.table.head(lo, hi);
    while (cur !== e) {
      prev = cur;
      cur = chunks[cur >>> CHUNK_SHIFT][(cur & CHUNK_MASK) * ENTRY_WORDS + NEXT_FOR_KEY];
    }
    this.dropLinked(lo, hi, e, prev, c[b + NEXT_FOR_KEY], meta & ENDPOINT_MASK, (meta >>> TIER_SHIFT) & TIER_MASK);
  }

  /** Frees one entry by the eviction policy (see the top of this module). */
  evictOne(): void {
    const id = this.lists.largest();
    if (id < 0) return;
    this.drop(this.lists.head[id]);
    this.evictions++;
  }

  get bytes(): number {
    return this.pool.bytes + this.table.bytes + this.lists.bytes + this.expiry.bytes;
  }

  reset(): void {
    this.pool.clear();
    this.table.clear();
    this.lists.clear();
    this.expiry.clear();
    this.evictions = 0;
  }

  private insert(lo: number, hi: number, head: number, meta: number, id: number, tier: number): number {
    const e = this.pool.alloc();
    const c = this.pool.chunks[e >>> CHUNK_SHIFT];
    const b = (e & CHUNK_MASK) * ENTRY_WORDS;
    c[b + KEY_LO] = lo;
    c[b + KEY_HI] = hi;
    c[b + NEXT_FOR_KEY] = head;
    c[b + META] = meta;
    c[b + REFS] = 1;
    this.table.setHead(lo, hi, e);
    this.lists.append(id, e, tier);
    return e;
  }

  /** Unlinks an entry whose key-list predecessor is known, then frees it. */
  private dropLinked(lo: number, hi: number, e: number, prev: number, next: number, id: number, tier: number): void {
    if (prev === 0) this.table.setHead(lo, hi, next);
    else this.pool.chunks[prev >>> CHUNK_SHIFT][(prev & CHUNK_MASK) * ENTRY_WORDS + NEXT_FOR_KEY] = next;
    this.lists.unlink(id, e, tier);
    this.expiry.delete(e);
    this.pool.free(e);
  }
}
