import { describe, expect, it } from 'vitest';
import { pairedEnd, pairedFirst } from '../../../src/events/ingest/pairing.js';

/** Each engine block's request keys, through the two functions ingest uses. */
function pairEngineToRequest(
  engineBlocks: number,
  eb: number,
  carried: number,
  requestKeys: BigUint64Array,
  blockSize: number,
) {
  return Array.from({ length: engineBlocks }, (_, j) => {
    const start = carried + j * eb;
    return requestKeys.subarray(pairedFirst(start, blockSize), pairedEnd(start, eb, blockSize, requestKeys.length));
  });
}

const keys = (...v: number[]) => BigUint64Array.from(v.map(BigInt));
const asLists = (pairs: BigUint64Array[]) => pairs.map((p) => [...p].map(Number));

/** The spec's formula, E[i·|E|/n] ↔ R[i·|R|/n], for comparison. */
function formula(e: number, r: number): number[][] {
  const out: number[][] = Array.from({ length: e }, () => []);
  const n = Math.max(e, r);
  for (let i = 0; i < n; i++) {
    const ej = Math.floor((i * e) / n);
    const ri = Math.floor((i * r) / n);
    if (!out[ej].includes(10 + ri)) out[ej].push(10 + ri);
  }
  return out;
}

describe('pairEngineToRequest (by token range)', () => {
  it('pairs 1:1', () =>
    expect(asLists(pairEngineToRequest(3, 16, 0, keys(10, 11, 12), 16))).toEqual([[10], [11], [12]]));

  it('pairs many:1 (16-token engine blocks, B = 64)', () =>
    expect(asLists(pairEngineToRequest(8, 16, 0, keys(10, 11), 64))).toEqual([
      [10],
      [10],
      [10],
      [10],
      [11],
      [11],
      [11],
      [11],
    ]));

  it('pairs 1:many (64-token engine blocks, B = 16)', () =>
    expect(asLists(pairEngineToRequest(2, 64, 0, keys(10, 11, 12, 13, 14, 15, 16, 17), 16))).toEqual([
      [10, 11, 12, 13],
      [14, 15, 16, 17],
    ]));

  it('equals the spec formula whenever sizes divide and nothing is carried', () => {
    for (const [e, eb, B] of [
      [4, 16, 16],
      [8, 16, 64],
      [12, 16, 32],
      [2, 64, 16],
      [3, 32, 16],
      [5, 48, 16],
    ]) {
      const r = Math.floor((e * eb) / B);
      const rk = BigUint64Array.from({ length: r }, (_, i) => BigInt(10 + i));
      expect(asLists(pairEngineToRequest(e, eb, 0, rk, B))).toEqual(formula(e, r));
    }
  });

  it('follows tokens when the event starts with carried leftover tokens', () =>
    // 32 carried tokens + 6 engine blocks of 16 = 128 tokens = 2 canonical blocks of 64.
    expect(asLists(pairEngineToRequest(6, 16, 32, keys(10, 11), 64))).toEqual([[10], [10], [11], [11], [11], [11]]));

  it('maps a straddling engine block to both canonical blocks (uneven ratio)', () =>
    expect(asLists(pairEngineToRequest(3, 16, 0, keys(10, 11), 24))).toEqual([[10], [10, 11], [11]]));

  it('maps nothing when no canonical block is complete', () =>
    expect(asLists(pairEngineToRequest(2, 16, 0, keys(), 64))).toEqual([[], []]));
});
