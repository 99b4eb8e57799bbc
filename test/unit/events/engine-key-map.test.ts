import { describe, expect, it } from 'vitest';
import {
  type ChainLeftover,
  EngineKeyMap,
  type KeySink,
  newEngineKeyEntry,
} from '../../../src/events/ingest/engine-key-map.js';

/** Request keys pushed to a sink, as bigints. */
class Sink implements KeySink {
  keys: bigint[] = [];
  pushHalves(lo: number, hi: number): void {
    this.keys.push((BigInt(hi) << 32n) | BigInt(lo));
  }
  pushKeys(keys: BigUint64Array): void {
    this.keys.push(...keys);
  }
}

/** Request keys 0x1_0000000a, 0x2_0000000b, 0x3_0000000c as uint32 halves. */
const KEYS = new Uint32Array([0xa, 1, 0xb, 2, 0xc, 3]);

function requestKeys(map: EngineKeyMap, lo: number, hi: number, anchors?: Sink): bigint[] {
  const sink = new Sink();
  map.requestKeysAt(map.slotOf(lo, hi), sink, anchors);
  return sink.keys;
}

describe('EngineKeyMap.define (typed entry)', () => {
  it('maps an engine key to one request key that is also where its child chain continues', () => {
    const map = new EngineKeyMap();
    map.define({ ...newEngineKeyEntry(), lo: 7, hi: 0, keys: KEYS, first: 1, end: 2, chainIndex: 1 });
    expect(requestKeys(map, 7, 0)).toEqual([0x2_0000000bn]);
    const start = map.chainStart(7, 0)!;
    expect([start.baseLo, start.baseHi, start.leftover, start.hasAnchor]).toEqual([0xb, 2, null, false]);
  });

  it('maps an engine key larger than the canonical block to several request keys, continuing from another', () => {
    const map = new EngineKeyMap();
    map.define({ ...newEngineKeyEntry(), lo: 8, hi: 1, keys: KEYS, first: 0, end: 3, chainIndex: 2 });
    expect(requestKeys(map, 8, 1)).toEqual([0x1_0000000an, 0x2_0000000bn, 0x3_0000000cn]);
    expect([map.chainStart(8, 1)!.baseLo, map.chainStart(8, 1)!.baseHi]).toEqual([0xc, 3]);
  });

  it('keeps the leftover of a block that ends inside a canonical block, and the first definition of a known key', () => {
    const map = new EngineKeyMap();
    const tokens = new Uint32Array([5, 6]);
    const leftover: ChainLeftover = { base: 0x2_0000000bn, tokens, extras: [], anchor: null, pieces: [] };
    const entry = { ...newEngineKeyEntry(), lo: 9, hi: 0, keys: KEYS, first: 0, end: 0, leftover };
    const slot = map.define(entry);
    expect(requestKeys(map, 9, 0)).toEqual([]);
    const start = map.chainStart(9, 0)!;
    expect([start.baseLo, start.baseHi, start.leftover]).toEqual([0xb, 2, leftover]);
    // Defined again (another store of the same block): same slot, mapping unchanged.
    expect(map.define({ ...entry, first: 0, end: 1, chainIndex: 0, leftover: null })).toBe(slot);
    expect(map.chainStart(9, 0)!.leftover).toBe(leftover);
    expect(map.size).toBe(1);
  });

  it('keeps the chain anchor when anchors are tracked, once per request key', () => {
    const map = new EngineKeyMap(true);
    const entry = { ...newEngineKeyEntry(), lo: 1, hi: 2, keys: KEYS, first: 0, end: 2, chainIndex: 1 };
    map.define({ ...entry, anchorLo: 0xa, anchorHi: 1 });
    const anchors = new Sink();
    expect(requestKeys(map, 1, 2, anchors)).toEqual([0x1_0000000an, 0x2_0000000bn]);
    expect(anchors.keys).toEqual([0x1_0000000an, 0x1_0000000an]);
    const start = map.chainStart(1, 2)!;
    expect([start.hasAnchor, start.anchorLo, start.anchorHi]).toEqual([true, 0xa, 1]);
  });
});
