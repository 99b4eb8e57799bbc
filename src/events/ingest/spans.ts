import type { EngineKeyMap, KeySink } from '../../index/engine-key-map.js';
import { U64Table } from '../../index/u64-table.js';

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
 * directly (EngineKeyMap). Endpoints that never see a span pay nothing but an empty table.
 *
 * Pieces → spans: a piece usually belongs to one span; a branch inside a canonical block (two prompts sharing the
 * first engine blocks of it) makes the shared pieces belong to several. Links of a piece survive while its span
 * lives, even when the bridge forgets the piece (it was removed everywhere): a re-stored piece rejoins its spans.
 * A span ends when its closer is forgotten (it cannot be complete without it).
 */
/** Word 0 of a piece's link: 1 + id of its (first) span; word 1: 1 + id of a second span. More: `moreSpans`. */
const W_FIRST = 0;
const W_SECOND = 1;

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
  /** Chain anchor (block 0's request key), when the writer needs anchors. */
  private ancLo = new Uint32Array(64);
  private ancHi = new Uint32Array(64);
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
  private readonly links = new U64Table(2);
  /** Third and later spans of a piece (branch points shared by more than two spans). */
  private readonly moreSpans = new Map<bigint, number[]>();
  private readonly ids: number[] = [];
  private live = 0;

  /** Spans alive. */
  get size(): number {
    return this.live;
  }

  /** Bytes held: columns, piece pool, links. */
  get byteLength(): number {
    return this.capacity * 28 + this.pool.byteLength + this.links.byteLength + this.moreSpans.size * 96;
  }

  keyLo(id: number): number {
    return this.reqLo[id];
  }

  keyHi(id: number): number {
    return this.reqHi[id];
  }

  anchorLo(id: number): number {
    return this.ancLo[id];
  }

  anchorHi(id: number): number {
    return this.ancHi[id];
  }

  indexedOn(id: number): number {
    return this.indexed[id];
  }

  setIndexed(id: number, mask: number): void {
    this.indexed[id] = mask;
  }

  /**
   * The span closed by the engine key (closerLo, closerHi), or −1. A closer determines the whole prefix before it, so
   * it closes at most one span.
   */
  closedBy(closerLo: number, closerHi: number): number {
    const ids = this.ids;
    ids.length = 0;
    this.spansOf(closerLo, closerHi, ids);
    for (const id of ids) {
      const last = this.start[id] + 2 * this.count[id] - 2;
      if (this.pool[last] === closerLo && this.pool[last + 1] === closerHi) return id;
    }
    return -1;
  }

  /**
   * Records a new span whose pieces are the first `n` pairs of `pieces` ([lo, hi, …]) and links them to it; returns
   * its id. The caller checked closedBy() first.
   */
  create(lo: number, hi: number, anchorLo: number, anchorHi: number, pieces: readonly number[], n: number): number {
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.nextId++;
    if (id >= this.capacity) this.growColumns();
    this.reqLo[id] = lo;
    this.reqHi[id] = hi;
    this.ancLo[id] = anchorLo;
    this.ancHi[id] = anchorHi;
    this.indexed[id] = 0;
    const at = this.allocPieces(n);
    for (let i = 0; i < 2 * n; i++) this.pool[at + i] = pieces[i];
    this.start[id] = at;
    this.count[id] = n;
    this.live++;
    for (let i = 0; i < 2 * n; i += 2) this.link(pieces[i], pieces[i + 1], id);
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

  /** Appends the ids of the spans the engine key is a piece of. */
  spansOf(lo: number, hi: number, out: number[]): void {
    if (this.live === 0) return;
    const slot = this.links.find(lo, hi);
    if (slot < 0) return;
    const v = this.links.valueAt(slot);
    const d = this.links.data;
    if (d[v + W_FIRST] !== 0) out.push(d[v + W_FIRST] - 1);
    if (d[v + W_SECOND] !== 0) {
      out.push(d[v + W_SECOND] - 1);
      const more = this.moreSpans.size > 0 ? this.moreSpans.get(join(lo, hi)) : undefined;
      if (more) for (const id of more) out.push(id);
    }
  }

  /**
   * The engine key just became held on the tier: appends the request key (and anchor) of each of its spans that is
   * now complete there, and marks it indexed.
   */
  completedBy(map: EngineKeyMap, lo: number, hi: number, tier: number, sink: KeySink, anchors: KeySink | undefined): void {
    const ids = this.ids;
    ids.length = 0;
    this.spansOf(lo, hi, ids);
    const bit = 1 << tier;
    for (const id of ids) {
      if ((this.indexed[id] & bit) !== 0 || !this.allHeld(map, id, tier)) continue;
      this.indexed[id] |= bit;
      sink.pushHalves(this.reqLo[id], this.reqHi[id]);
      anchors?.pushHalves(this.ancLo[id], this.ancHi[id]);
    }
  }

  /**
   * The engine key is no longer held on the tier: appends the request key (and anchor) of each of its spans indexed
   * there, and marks it not indexed.
   */
  brokenBy(lo: number, hi: number, tier: number, sink: KeySink, anchors: KeySink | undefined): void {
    const ids = this.ids;
    ids.length = 0;
    this.spansOf(lo, hi, ids);
    const bit = 1 << tier;
    for (const id of ids) {
      if ((this.indexed[id] & bit) === 0) continue;
      this.indexed[id] &= ~bit;
      sink.pushHalves(this.reqLo[id], this.reqHi[id]);
      anchors?.pushHalves(this.ancLo[id], this.ancHi[id]);
    }
  }

  /** The bridge forgot the engine key: a span it closes ends (its other pieces are unlinked from it). */
  forgetKey(lo: number, hi: number): void {
    if (this.live === 0) return;
    const id = this.closedBy(lo, hi);
    if (id < 0) return;
    const at = this.start[id];
    const n = this.count[id];
    for (let i = at; i < at + 2 * n; i += 2) this.unlink(this.pool[i], this.pool[i + 1], id);
    let free = this.freeRanges.get(n);
    if (!free) this.freeRanges.set(n, (free = []));
    free.push(at);
    this.count[id] = 0;
    this.indexed[id] = 0;
    this.freeIds.push(id);
    this.live--;
  }

  clear(): void {
    this.capacity = 64;
    for (const k of ['reqLo', 'reqHi', 'ancLo', 'ancHi', 'indexed', 'start', 'count'] as const) this[k] = new Uint32Array(64);
    this.nextId = 0;
    this.freeIds.length = 0;
    this.pool = new Uint32Array(256);
    this.poolUsed = 0;
    this.freeRanges.clear();
    this.links.clear();
    this.moreSpans.clear();
    this.live = 0;
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
    for (const k of ['reqLo', 'reqHi', 'ancLo', 'ancHi', 'indexed', 'start', 'count'] as const) {
      const next = new Uint32Array(this.capacity);
      next.set(this[k]);
      this[k] = next;
    }
  }

  private link(lo: number, hi: number, id: number): void {
    const slot = this.links.insert(lo, hi);
    const v = this.links.valueAt(slot);
    const d = this.links.data;
    if (d[v + W_FIRST] === 0) d[v + W_FIRST] = id + 1;
    else if (d[v + W_FIRST] === id + 1) return;
    else if (d[v + W_SECOND] === 0) d[v + W_SECOND] = id + 1;
    else if (d[v + W_SECOND] !== id + 1) {
      const key = join(lo, hi);
      const more = this.moreSpans.get(key);
      if (!more) this.moreSpans.set(key, [id]);
      else if (!more.includes(id)) more.push(id);
    }
  }

  private unlink(lo: number, hi: number, id: number): void {
    const slot = this.links.find(lo, hi);
    if (slot < 0) return;
    const v = this.links.valueAt(slot);
    const d = this.links.data;
    const key = this.moreSpans.size > 0 ? join(lo, hi) : 0n;
    const more = this.moreSpans.size > 0 ? this.moreSpans.get(key) : undefined;
    if (more) {
      const at = more.indexOf(id);
      if (at >= 0) {
        more.splice(at, 1);
        if (more.length === 0) this.moreSpans.delete(key);
        return;
      }
    }
    // Keep the link words packed: a later span moves into the freed word.
    const refill = (): number => {
      if (!more || more.length === 0) return 0;
      const next = more.pop()! + 1;
      if (more.length === 0) this.moreSpans.delete(key);
      return next;
    };
    if (d[v + W_SECOND] === id + 1) d[v + W_SECOND] = refill();
    else if (d[v + W_FIRST] === id + 1) {
      d[v + W_FIRST] = d[v + W_SECOND];
      d[v + W_SECOND] = d[v + W_FIRST] === 0 ? 0 : refill();
    } else return;
    if (d[v + W_FIRST] === 0) this.links.delete(slot);
  }
}

function join(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}
