import { describe, expect, it } from 'vitest';
import { pairEngineToRequest } from '../../../src/events/ingest/pairing.js';

const keys = (...v: number[]) => BigUint64Array.from(v.map(BigInt));
const asLists = (pairs: BigUint64Array[]) => pairs.map((p) => [...p].map(Number));

describe('pairEngineToRequest (E[i·|E|/n] ↔ R[i·|R|/n])', () => {
  it('pairs 1:1', () => expect(asLists(pairEngineToRequest(3, keys(10, 11, 12)))).toEqual([[10], [11], [12]]));
  it('pairs many:1 (16-token engine blocks, B = 64)', () =>
    expect(asLists(pairEngineToRequest(8, keys(10, 11)))).toEqual([[10], [10], [10], [10], [11], [11], [11], [11]]));
  it('pairs 1:many (64-token engine blocks, B = 16)', () =>
    expect(asLists(pairEngineToRequest(2, keys(10, 11, 12, 13, 14, 15, 16, 17)))).toEqual([
      [10, 11, 12, 13],
      [14, 15, 16, 17],
    ]));
  it('pairs uneven ratios', () => expect(asLists(pairEngineToRequest(3, keys(10, 11)))).toEqual([[10], [10], [11]]));
  it('maps nothing when no canonical block is complete', () =>
    expect(asLists(pairEngineToRequest(2, keys()))).toEqual([[], []]));
});
