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
export interface Span {
  /** Request key, uint32 halves. */
  lo: number;
  hi: number;
  /** Chain anchor (block 0's request key), when the writer needs anchors. */
  anchorLo: number;
  anchorHi: number;
  /** Engine keys of the pieces as [lo, hi, lo, hi, …] in chain order; the last pair is the closer. */
  pieces: number[];
  /** Bit t set while the request key is added to the index for this span on tier t. */
  indexed: number;
}

/** Word 0 of a piece's link: 1 + id of its (first) span; word 1: 1 + id of a second span. More: `moreSpans`. */
const W_FIRST = 0;
const W_SECOND = 1;

export class SpanTable {
  private readonly spans: (Span | null)[] = [];
  private readonly freeIds: number[] = [];
  private readonly links = new U64Table(2);
  /** Third and later spans of a piece (branch points shared by more than two spans). */
  private readonly moreSpans = new Map<bigint, number[]>();
  private live = 0;

  /** Spans alive. */
  get size(): number {
    return this.live;
  }

  /** Approximate bytes held (for stats): link table plus a fixed estimate per span object. */
  get byteLength(): number {
    let pieces = 0;
    for (const s of this.spans) if (s) pieces += s.pieces.length;
    return this.links.byteLength + this.live * 88 + pieces * 8 + this.moreSpans.size * 96;
  }

  span(id: number): Span {
    const s = this.spans[id];
    if (!s) throw new RangeError(`no span ${id}`);
    return s;
  }

  /**
   * The span closed by the engine key (closerLo, closerHi), or −1. A closer determines the whole prefix before it, so
   * it closes at most one span.
   */
  closedBy(closerLo: number, closerHi: number): number {
    const ids = this.scratch;
    ids.length = 0;
    this.spansOf(closerLo, closerHi, ids);
    for (const id of ids) {
      const p = this.span(id).pieces;
      if (p[p.length - 2] === closerLo && p[p.length - 1] === closerHi) return id;
    }
    return -1;
  }

  private readonly scratch: number[] = [];

  /** Records a new span and links its pieces to it; returns its id. The caller checked closedBy() first. */
  create(lo: number, hi: number, anchorLo: number, anchorHi: number, pieces: number[]): number {
    const id = this.freeIds.length > 0 ? this.freeIds.pop()! : this.spans.length;
    this.spans[id] = { lo, hi, anchorLo, anchorHi, pieces, indexed: 0 };
    this.live++;
    for (let i = 0; i < pieces.length; i += 2) this.link(pieces[i], pieces[i + 1], id);
    return id;
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
      const span = this.span(id);
      if ((span.indexed & bit) !== 0 || !allHeld(map, span.pieces, tier)) continue;
      span.indexed |= bit;
      sink.pushHalves(span.lo, span.hi);
      anchors?.pushHalves(span.anchorLo, span.anchorHi);
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
      const span = this.span(id);
      if ((span.indexed & bit) === 0) continue;
      span.indexed &= ~bit;
      sink.pushHalves(span.lo, span.hi);
      anchors?.pushHalves(span.anchorLo, span.anchorHi);
    }
  }

  private readonly ids: number[] = [];

  /** The bridge forgot the engine key: a span it closes ends (its other pieces are unlinked from it). */
  forgetKey(lo: number, hi: number): void {
    if (this.live === 0) return;
    const id = this.closedBy(lo, hi);
    if (id < 0) return;
    const span = this.span(id);
    for (let i = 0; i < span.pieces.length; i += 2) this.unlink(span.pieces[i], span.pieces[i + 1], id);
    this.spans[id] = null;
    this.freeIds.push(id);
    this.live--;
  }

  clear(): void {
    this.spans.length = 0;
    this.freeIds.length = 0;
    this.links.clear();
    this.moreSpans.clear();
    this.live = 0;
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

/** True when every piece ([lo, hi, …]) has a positive count on the tier. */
function allHeld(map: EngineKeyMap, pieces: readonly number[], tier: number): boolean {
  for (let i = 0; i < pieces.length; i += 2) {
    const slot = map.slotOf(pieces[i], pieces[i + 1]);
    if (slot < 0 || map.countAt(slot, tier) === 0) return false;
  }
  return true;
}

function join(lo: number, hi: number): bigint {
  return (BigInt(hi) << 32n) | BigInt(lo);
}
