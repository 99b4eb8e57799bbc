import { describe, expect, it } from 'vitest';
import { SpanTable } from '../../../src/events/ingest/spans.js';
import { EngineKeyMap, type KeySink, newEngineKeyEntry } from '../../../src/events/ingest/engine-key-map.js';

/**
 * SpanTable's piece → span links (spans.ts): the first span of a piece lives in its bridge entry, further spans of a
 * branch point in a side map, and the links of a piece the bridge forgot survive in `orphans` while its spans live.
 * Exercised directly, with exact span keys, so that every place a link can be is visited and drained again.
 */

const TIER = 0;

class Sink implements KeySink {
  keys: number[] = [];
  pushHalves(lo: number): void {
    this.keys.push(lo);
  }
  pushKeys(): void {
    throw new Error('spans push halves only');
  }
}

function setup() {
  const map = new EngineKeyMap();
  const spans = new SpanTable();
  /** Defines engine key k (lo = k, hi = 0) with no request keys of its own, and counts one store on TIER. */
  const store = (k: number) => {
    const slot = map.define({ ...newEngineKeyEntry(), lo: k, hi: 0 });
    spans.adopt(map, k, 0);
    if (map.addCountAt(slot, TIER, 1) !== 1) return [];
    const sink = new Sink();
    spans.completedBy(map, map.slotOf(k, 0), k, 0, TIER, sink, undefined);
    return sink.keys;
  };
  /** One removal of engine key k on TIER; the request keys of the spans that stop being complete. */
  const remove = (k: number) => {
    const slot = map.slotOf(k, 0);
    const sink = new Sink();
    if (map.addCountAt(slot, TIER, -1) > 0) return sink.keys;
    spans.brokenBy(map, slot, k, 0, TIER, sink, undefined);
    if (map.isUnheldAt(slot)) {
      spans.forgetKey(map, slot, k, 0);
      map.forgetAt(slot);
    }
    return sink.keys;
  };
  /** A span with request key `key` over the pieces (engine keys, chain order), indexed on the tiers holding them all. */
  const span = (key: number, pieces: number[]) => {
    const id = spans.create(
      map,
      key,
      0,
      0,
      0,
      pieces.flatMap((p) => [p, 0]),
      pieces.length,
    );
    spans.setIndexed(id, spans.heldEverywhere(map, id));
    return id;
  };
  return { map, spans, store, remove, span };
}

describe('span links', () => {
  it('a piece shared by three spans: links in the bridge entry, the side map, and orphans while forgotten', () => {
    const t = setup();
    for (const k of [1, 2, 3, 4, 5, 6, 7, 8]) t.store(k);
    t.span(1001, [1, 2, 3, 4]);
    t.span(1002, [1, 2, 5, 6]);
    t.span(1003, [1, 7, 8]);
    expect(t.spans.size).toBe(3);
    // Pieces 1 and 2 have more than one span: their second and third live in the side map.
    expect(t.spans.linkCounts()).toEqual({ orphans: 0, shared: 2 });

    // Removing the shared first piece breaks all three; the bridge forgets it, its links become an orphan.
    expect(t.remove(1).sort()).toEqual([1001, 1002, 1003]);
    expect(t.map.slotOf(1, 0)).toBe(-1);
    expect(t.spans.linkCounts()).toEqual({ orphans: 1, shared: 2 });
    // Defined and held again, it rejoins (adopt) and completes all three.
    expect(t.store(1).sort()).toEqual([1001, 1002, 1003]);
    expect(t.spans.linkCounts()).toEqual({ orphans: 0, shared: 2 });

    // Forgetting span 1003's closer ends it: piece 1 keeps spans 1001 and 1002, piece 7 no span.
    expect(t.remove(8)).toEqual([1003]);
    expect(t.spans.size).toBe(2);
    expect(t.map.spanLinkAt(t.map.slotOf(7, 0))).toBe(0);
    expect(t.remove(1).sort()).toEqual([1001, 1002]);
    // While piece 1 is an orphan, span 1001 ends (closer 4 forgotten): the orphan keeps span 1002 only, and pieces 1
    // and 2, each left with one span, hold it in their link word (the side map is empty again).
    expect(t.remove(4)).toEqual([]);
    expect(t.spans.linkCounts()).toEqual({ orphans: 1, shared: 0 });
    expect(t.store(1)).toEqual([1002]);
    // The last span ends: no link is left anywhere.
    expect(t.remove(6)).toEqual([1002]);
    expect(t.spans.size).toBe(0);
    expect(t.spans.linkCounts()).toEqual({ orphans: 0, shared: 0 });
    for (const k of [1, 2, 3, 5, 7]) expect(t.map.spanLinkAt(t.map.slotOf(k, 0))).toBe(0);
  });

  it('a carried piece the bridge no longer knows is linked as an orphan, with a second span in the side map', () => {
    const t = setup();
    for (const k of [2, 3, 4, 5]) t.store(k);
    // Piece 9 (the parent's leftover block, forgotten since) is unknown: the span is not complete anywhere.
    t.span(2001, [9, 2, 3]);
    t.span(2002, [9, 4, 5]);
    expect(t.spans.linkCounts()).toEqual({ orphans: 1, shared: 1 });
    // Span 2001 ends with its closer while 9 is still an orphan; 9 keeps span 2002.
    expect(t.remove(3)).toEqual([]);
    expect(t.spans.linkCounts()).toEqual({ orphans: 1, shared: 0 });
    expect(t.store(9)).toEqual([2002]);
    expect(t.spans.linkCounts()).toEqual({ orphans: 0, shared: 0 });
    expect(t.remove(5)).toEqual([2002]);
    expect(t.remove(9)).toEqual([]);
    expect(t.spans.size).toBe(0);
    expect(t.spans.linkCounts()).toEqual({ orphans: 0, shared: 0 });
  });

  it('span ids are reused after a span ends, and a reused id is not confused with the old span', () => {
    const t = setup();
    for (const k of [1, 2, 3, 4]) t.store(k);
    const first = t.span(3001, [1, 2]);
    expect(t.remove(2)).toEqual([3001]);
    t.store(2);
    const again = t.span(3002, [3, 4]);
    expect(again).toBe(first);
    // Piece 1 belonged to the ended span only: it is linked to nothing, so removing it breaks nothing.
    expect(t.map.spanLinkAt(t.map.slotOf(1, 0))).toBe(0);
    expect(t.remove(1)).toEqual([]);
    expect(t.remove(3)).toEqual([3002]);
  });
});
