/**
 * The global pool of index entries: fixed-size chunks of 65,536 entries, each chunk one Uint32Array holding entries
 * as 7-word structs. Chunks (rather than one growing array) keep growth free of large copies and transient doubling.
 * Entry index 0 is reserved as "none", so every link field can use 0 as its terminator.
 */

/**
 * Entry layout and field packing. Modules with hot loops copy these into module-local consts at load
 * (`const { META, … } = ENTRY_LAYOUT`): under transpiling loaders (tsx, vitest) every access to an imported binding
 * becomes a getter call, which costs more than the rest of a lookup step.
 */
export const ENTRY_LAYOUT = Object.freeze({
  ENTRY_WORDS: 7,
  /** Word offsets inside an entry. */
  KEY_LO: 0,
  KEY_HI: 1,
  /** Next entry of the same request key (singly linked; also links the free list). */
  NEXT_FOR_KEY: 2,
  /** Neighbours in the endpoint's recency list (oldest at its head). */
  EP_PREV: 3,
  EP_NEXT: 4,
  /** endpoint id (bits 0–15) | tier id (bits 16–23) | flags (bits 24–31). */
  META: 5,
  REFS: 6,
  CHUNK_SHIFT: 16,
  CHUNK_ENTRIES: 1 << 16,
  CHUNK_MASK: (1 << 16) - 1,
  ENDPOINT_MASK: 0xffff,
  TIER_SHIFT: 16,
  TIER_MASK: 0xff,
  FLAG_SPECULATIVE: 1 << 24,
  MAX_REFS: 0xffffffff,
});

const { ENTRY_WORDS, NEXT_FOR_KEY, META, CHUNK_SHIFT, CHUNK_ENTRIES, CHUNK_MASK } = ENTRY_LAYOUT;

export class EntryPool {
  readonly chunks: Uint32Array[] = [];
  /** First index never handed out. */
  private fresh = 1;
  private freeHead = 0;
  private live = 0;

  /** A new entry index; its words hold stale data until the caller writes them. */
  alloc(): number {
    this.live++;
    const reused = this.freeHead;
    if (reused !== 0) {
      this.freeHead = this.chunks[reused >>> CHUNK_SHIFT][(reused & CHUNK_MASK) * ENTRY_WORDS + NEXT_FOR_KEY];
      return reused;
    }
    const e = this.fresh++;
    if (e >>> CHUNK_SHIFT >= this.chunks.length) this.chunks.push(new Uint32Array(CHUNK_ENTRIES * ENTRY_WORDS));
    return e;
  }

  free(e: number): void {
    const c = this.chunks[e >>> CHUNK_SHIFT];
    const b = (e & CHUNK_MASK) * ENTRY_WORDS;
    c[b + META] = 0;
    c[b + NEXT_FOR_KEY] = this.freeHead;
    this.freeHead = e;
    this.live--;
  }

  /** Live entries. */
  get size(): number {
    return this.live;
  }

  get bytes(): number {
    return this.chunks.length * CHUNK_ENTRIES * ENTRY_WORDS * 4;
  }

  clear(): void {
    this.chunks.length = 0;
    this.fresh = 1;
    this.freeHead = 0;
    this.live = 0;
  }
}
