import { EngineKeyMap, type KeySink } from './engine-key-map.js';
import { U64Table } from '../../index/table/u64-table.js';
import { addOnce, join, removeOnce } from './span-links.js';

/**
 * Canonical blocks made of several engine blocks (engine block size < canonical `B`, or sizes that do not divide),
 * per endpoint. vLLM reuses a prefix of whole engine blocks and stops at the first missing one, so such a canonical
 * block is reusable on a tier only while EVERY engine block it spans ("piece") is held there
 * (spec/block-keys.md; llm-d's `TestCanonicalEviction_Eager`). Each span remembers its request key, its pieces in
 * chain order (the last one, the "closer", completes it) and the tiers on which its request key is currently in the
 * index; ingest adds the key when the last missing piece becomes held on a tier and removes it when the first piece
 * stops being held there, so the index's refcount on (key, endpoint, tier) moves exactly once per span and tier.
 *
 * A canonical block that lies inside one engine block (1:1, 1:many) is not a span: that engine key maps to it
 * directly (EngineKeyMap). Endpoints that never see a span pay nothing but empty columns.
 *
 * Pieces → spans: a piece's first span is linked in its own bridge entry (EngineKeyMap.spanLinkAt: no table of its
 * own, no probe beyond the piece's slot). A branch inside a canonical block (two prompts sharing the first engine
 * blocks of it) makes the shared pieces belong to several spans: the second and later ones live in `moreSpans`.
 * Links of a piece survive while its span lives, even when the bridge forgets the piece (it was removed everywhere):
 * its link word moves to `orphans` (its `moreSpans` stay) and back into the bridge entry when the piece is defined
 * again (adopt()), so a re-stored piece rejoins its spans. A span ends when its closer is forgotten (it cannot be complete without it).
 */

/**
 * Spans are stored by column in typed arrays (ids index them) and their pieces in one shared pool, so a span costs a
 * few dozen bytes and no object for the garbage collector: an endpoint of 16-token engine blocks under 64-token
 * canonical blocks has one span per canonical block.
 */
export class SpanTable {
  private capacity = 64;
  /** Request key, uint32 halves. */
  private reqLo = new Uint32Array(64);
  private reqHi = new Uint32Array(64);
  /** Chain anchor (block 0's request key), only when the writer needs anchors (else empty: 8 bytes a span less). */
  private ancLo: Uint32Array;
  private ancHi: Uint32Array;
  /** Bit t set while the request key is added to the index for this span on tier t. */
  private indexed = new Uint32Array(64);
  /** Where the span's pieces start in `pool` (in uint32 words) and how many pieces it has (0 = no span). */
  private start = new Uint32Array(64);
  private count = new Uint32Array(64);
  private nextId = 0;
  private readonly freeIds: number[] = [];
  /** Engine keys of every span's pieces as [lo, hi, lo, hi, …] in chain order; the last pair is the closer. */
  private pool = new Uint32Array(256);
  private poolUsed = 0;
  /** Freed piece ranges by piece count (spans of one endpoint nearly all have the same count). */
  private readonly freeRanges = new Map<number, number[]>();
  /** Spans of a piece beyond the one in its link word (the piece's link word has HAS_MORE set). */
  private readonly moreSpans = new Map<bigint, number[]>();
  /**
   * Link words of pieces the bridge forgot while their spans live (until adopt() or the spans end). Usually small:
   * a chain removed in order orphans a span's first pieces only until its closer goes.
   */
  private readonly orphans = new U64Table(1);
  private readonly ids: number[] = [];
  private live = 0;

  constructor(private readonly trackAnchors = false) {
    this.ancLo = new Uint32Array(trackAnchors ? 64 : 0);
    this.ancHi = new Uint32Array(trackAnchors ? 64 : 0);
  }

  /** Spans alive. */
  get size(): number {
    return this.live;
  }

  /** Bytes held: columns, piece pool, side links (piece links in the bridge cost nothing here). */
  get byteLength(): number {
    const columnBytes = this.trackAnchors ? 28 : 20;
    return this.capacity * columnBytes + this.pool.byteLength + this.orphans.byteLength + this.moreSpans.size * 96;
  }

  /** Link bookkeeping outside the bridge (for tests): pieces in `orphans`, pieces with entries in `moreSpans`. */
  linkCounts(): { orphans: number; shared: number } {
    return { orphans: this.orphans.size, shared: this.moreSpans.size };
  }

  keyLo(id: number): number {
    return this.reqLo[id];
  }

  keyHi(id: number): number {
    return this.reqHi[id];
  }

  anchorLo(id: number): number {
    return this.trackAnchors ? this.ancLo[id] : 0;
  }

  anchorHi(id: number): number {
    return this.trackAnchors ? this.ancHi[id] : 0;
  }

  indexedOn(id: number): number {
    return this.indexed[id];
  }

  setIndexed(id: number, mask: number): void {
    this.indexed[id] = mask;
  }

  /**
   * The span closed by the engine key (closerLo, closerHi), or −1. A closer determines the whole prefix before it, so
   * it closes at most one span; a live span's closer is in the bridge (forgetting it ends the span).
   */
  closedBy(map: EngineKeyMap, closerLo: number, closerHi: number): number {
    if (this.live === 0) return -1;
    const slot = map.slotOf(closerLo, closerHi);
    if (slot < 0 || map.spanLinkAt(slot) === 0) return -1;
    const ids = this.ids;
    ids.length = 0;
    this.spansAt(map, slot, closerLo, closerHi, ids);
    for (const id of ids) if (this.isCloser(id, closerLo, closerHi)) return id;
    return -1;
  }

  /**
   * Records a new span whose pieces are the first `n` pairs of `pieces` ([lo, hi, …]) and links them to it; returns
   * its id. The caller checked closedBy() first.
   */
  create(
    map: EngineKeyMap,
    lo: number,
    hi: number,
    anchorLo: number,
    anchorHi: number,
    pieces: readonly number[],
    n: number,
  ): number {
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.nextId++;
    if (id >= this.capacity) this.growColumns();
    this.reqLo[id] = lo;
    this.reqHi[id] = hi;
    if (this.trackAnchors) {
      this.ancLo[id] = anchorLo;
      this.ancHi[id] = anchorHi;
    }
    this.indexed[id] = 0;
    const at = this.allocPieces(n);
    for (let i = 0; i < 2 * n; i++) this.pool[at + i] = pieces[i];
    this.start[id] = at;
    this.count[id] = n;
    this.live++;
    for (let i = 0; i < 2 * n; i += 2) this.link(map, pieces[i], pieces[i + 1], id);
    return id;
  }

  /** Tiers (bitmask) on which every piece of the span is held. */
  heldEverywhere(map: EngineKeyMap, id: number): number {
    let mask = -1;
    const end = this.start[id] + 2 * this.count[id];
    for (let i = this.start[id]; i < end && mask !== 0; i += 2) {
      const slot = map.slotOf(this.pool[i], this.pool[i + 1]);
      mask &= slot < 0 ? 0 : map.heldTiersAt(slot);
    }
    return mask;
  }

  /**
   * The engine key (lo, hi) was just defined in the bridge: spans it was a piece of while forgotten link it
   * again (in its bridge entry), so that it completes them when it is held.
   */
  adopt(map: EngineKeyMap, lo: number, hi: number): void {
    if (this.orphans.size === 0) return;
    const orphan = this.orphans.find(lo, hi);
    if (orphan < 0) return;
    map.setSpanLinkAt(map.slotOf(lo, hi), this.orphans.data[this.orphans.valueAt(orphan)]);
    this.orphans.delete(orphan);
  }

  /**
   * The engine key at `slot` (lo, hi) just became held on the tier: appends the request key (and anchor) of each of
   * its spans that is now complete there, and marks it indexed.
   */
  completedBy(
    map: EngineKeyMap,
    slot: number,
    lo: number,
    hi: number,
    tier: number,
    sink: KeySink,
    anchors: KeySink | undefined,
  ): void {
    if (map.spanLinkAt(slot) === 0) return;
    const ids = this.ids;
    ids.length = 0;
    this.spansAt(map, slot, lo, hi, ids);
    const bit = 1 << tier;
    for (const id of ids) {
      if ((this.indexed[id] & bit) !== 0 || !this.allHeld(map, id, tier)) continue;
      this.indexed[id] |= bit;
      sink.pushHalves(this.reqLo[id], this.reqHi[id]);
      anchors?.pushHalves(this.anchorLo(id), this.anchorHi(id));
    }
  }

  /**
   * The engine key at `slot` (lo, hi) is no longer held on the tier: appends the request key (and anchor) of each of
   * its spans indexed there, and marks it not indexed.
   */
  brokenBy(
    map: EngineKeyMap,
    slot: number,
    lo: number,
    hi: number,
    tier: number,
    sink: KeySink,
    anchors: KeySink | undefined,
  ): void {
    if (map.spanLinkAt(slot) === 0) return;
    const ids = this.ids;
    ids.length = 0;
    this.spansAt(map, slot, lo, hi, ids);
    const bit = 1 << tier;
    for (const id of ids) {
      if ((this.indexed[id] & bit) === 0) continue;
      this.indexed[id] &= ~bit;
      sink.pushHalves(this.reqLo[id], this.reqHi[id]);
      anchors?.pushHalves(this.anchorLo(id), this.anchorHi(id));
    }
  }

  /**
   * The bridge is about to forget the engine key at `slot` (lo, hi; call before EngineKeyMap.forgetAt): a span it
   * closes ends (its other pieces are unlinked from it); its links to other spans move to `orphans`. A key linked to
   * no span costs one read of its own entry: no probe.
   */
  forgetKey(map: EngineKeyMap, slot: number, lo: number, hi: number): void {
    const before = map.spanLinkAt(slot);
    if (before === 0) return;
    let closed = -1;
    // A piece of one span (the common case) names it in its link word: no list to build.
    if ((before & HAS_MORE) === 0) closed = this.isCloser((before >>> 1) - 1, lo, hi) ? (before >>> 1) - 1 : -1;
    else {
      const ids = this.ids;
      ids.length = 0;
      this.spansAt(map, slot, lo, hi, ids);
      for (const id of ids) if (this.isCloser(id, lo, hi)) closed = id;
    }
    // end() only probes and rewrites link words: `slot` stays valid.
    if (closed >= 0) this.end(map, closed);
    const link = map.spanLinkAt(slot);
    if (link !== 0) this.orphans.data[this.orphans.valueAt(this.orphans.insert(lo, hi))] = link;
  }

  clear(): void {
    this.capacity = 64;
    for (const k of ['reqLo', 'reqHi', 'indexed', 'start', 'count'] as const) this[k] = new Uint32Array(64);
    this.ancLo = new Uint32Array(this.trackAnchors ? 64 : 0);
    this.ancHi = new Uint32Array(this.trackAnchors ? 64 : 0);
    this.nextId = 0;
    this.freeIds.length = 0;
    this.pool = new Uint32Array(256);
    this.poolUsed = 0;
    this.freeRanges.clear();
    this.moreSpans.clear();
    this.orphans.clear();
    this.live = 0;
  }

  /** Appends the ids of the spans the engine key at `slot` (lo, hi) is a piece of. */
  private spansAt(map: EngineKeyMap, slot: number, lo: number, hi: number, out: number[]): void {
    const link = map.spanLinkAt(slot);
    const first = link >>> 1;
    if (first !== 0) out.push(first - 1);
    if ((link & HAS_MORE) !== 0) {
      const more = this.moreSpans.get(join(lo, hi));
      if (more) for (const id of more) out.push(id);
    }
  }

  private isCloser(id: number, lo: number, hi: number): boolean {
    const last = this.start[id] + 2 * this.count[id] - 2;
    return this.count[id] > 0 && this.pool[last] === lo && this.pool[last + 1] === hi;
  }

  /** Ends a span: unlinks its pieces and frees its id and piece range. */
  private end(map: EngineKeyMap, id: number): void {
    const at = this.start[id];
    const n = this.count[id];
    for (let i = at; i < at + 2 * n; i += 2) this.unlink(map, this.pool[i], this.pool[i + 1], id);
    let free = this.freeRanges.get(n);
    if (!free) this.freeRanges.set(n, (free = []));
    free.push(at);
    this.count[id] = 0;
    this.indexed[id] = 0;
    this.freeIds.push(id);
    this.live--;
  }

  private allHeld(map: EngineKeyMap, id: number, tier: number): boolean {
    const end = this.start[id] + 2 * this.count[id];
    for (let i = this.start[id]; i < end; i += 2) {
      const slot = map.slotOf(this.pool[i], this.pool[i + 1]);
      if (slot < 0 || map.countAt(slot, tier) === 0) return false;
    }
    return true;
  }

  private allocPieces(n: number): number {
    const free = this.freeRanges.get(n);
    if (free && free.length > 0) return free.pop()!;
    if (this.poolUsed + 2 * n > this.pool.length) {
      const next = new Uint32Array(Math.max(this.pool.length * 2, this.poolUsed + 2 * n));
      next.set(this.pool.subarray(0, this.poolUsed));
      this.pool = next;
    }
    const at = this.poolUsed;
    this.poolUsed += 2 * n;
    return at;
  }

  private growColumns(): void {
    this.capacity *= 2;
    const columns = this.trackAnchors
      ? (['reqLo', 'reqHi', 'ancLo', 'ancHi', 'indexed', 'start', 'count'] as const)
      : (['reqLo', 'reqHi', 'indexed', 'start', 'count'] as const);
    for (const k of columns) {
      const next = new Uint32Array(this.capacity);
      next.set(this[k]);
      this[k] = next;
    }
  }

  /**
   * Links the piece (lo, hi) to span `id` (once): in its link word when that has room, else in `moreSpans`. The link
   * word is in the piece's bridge entry, or in `orphans` while the bridge does not know the piece.
   */
  private link(map: EngineKeyMap, lo: number, hi: number, id: number): void {
    const slot = map.slotOf(lo, hi);
    const orphan = slot < 0 ? this.orphans.insert(lo, hi) : -1;
    const link = slot >= 0 ? map.spanLinkAt(slot) : this.orphans.data[this.orphans.valueAt(orphan)];
    const first = link >>> 1;
    if (first === id + 1) return;
    let next: number;
    if (first === 0 && id + 1 <= MAX_FIRST) next = ((id + 1) << 1) | (link & HAS_MORE);
    else {
      addOnce(this.moreSpans, join(lo, hi), id);
      next = link | HAS_MORE;
    }
    if (slot >= 0) map.setSpanLinkAt(slot, next);
    else this.orphans.data[this.orphans.valueAt(orphan)] = next;
  }

  /** Unlinks the piece (lo, hi) from span `id`, wherever the link is. */
  private unlink(map: EngineKeyMap, lo: number, hi: number, id: number): void {
    // Orphans first: a small table, and a piece found there needs no probe of the bridge.
    const orphan = this.orphans.size > 0 ? this.orphans.find(lo, hi) : -1;
    const slot = orphan < 0 ? map.slotOf(lo, hi) : -1;
    if (orphan < 0 && slot < 0) return;
    const link = slot >= 0 ? map.spanLinkAt(slot) : this.orphans.data[this.orphans.valueAt(orphan)];
    let next = link;
    if (link >>> 1 === id + 1) next = (link & HAS_MORE) === 0 ? 0 : this.refill(lo, hi);
    else if ((link & HAS_MORE) !== 0 && removeOnce(this.moreSpans, join(lo, hi), id) === 0) next = link & ~HAS_MORE;
    if (slot >= 0) map.setSpanLinkAt(slot, next);
    else if (next !== 0) this.orphans.data[this.orphans.valueAt(orphan)] = next;
    else this.orphans.delete(orphan);
  }
  /** The link word of the piece (lo, hi) after its first place emptied: a span from `moreSpans` moves into it. */
  private refill(lo: number, hi: number): number {
    const key = join(lo, hi);
    const more = this.moreSpans.get(key);
    if (!more || more.length === 0) return 0;
    // (Ids past MAX_FIRST stay in `moreSpans`, the first place empty: spansAt() reads both.)
    if (more[more.length - 1] + 1 > MAX_FIRST) return HAS_MORE;
    const id = more.pop()!;
    if (more.length > 0) return ((id + 1) << 1) | HAS_MORE;
    this.moreSpans.delete(key);
    return (id + 1) << 1;
  }
}

/**
 * A piece's link word in its bridge entry (EngineKeyMap.spanLinkAt): (1 + id of its first span) << 1, or 0 when the
 * first place is empty, with bit 0 (HAS_MORE) set while `moreSpans` holds further spans of the piece (so that a piece
 * of one span never looks there).
 */
const HAS_MORE = 1;
const MAX_FIRST = EngineKeyMap.MAX_SPAN_LINK >>> 1;
