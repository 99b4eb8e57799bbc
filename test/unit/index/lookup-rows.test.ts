import { describe, expect, it } from 'vitest';
import { MatchRows, MemoryIndex, TierRegistry, type PrefixMatch } from '../../../src/index/index.js';

const keys = (...v: number[]) => BigUint64Array.from(v.map(BigInt));
const SPEC = 0x80000000;

/** An index with known contents: GPU = tier 0, CPU = tier 1, DISK = tier 3 (TierRegistry's fixed ids). */
function known() {
  const tiers = new TierRegistry();
  const clock = { now: 1_000 };
  const index = new MemoryIndex({ tiers, shards: 4, clock: () => clock.now });
  index.add('10.0.0.1:8000', 'GPU', keys(1, 2, 3, 4));
  index.add('10.0.0.1:8000', 'CPU', keys(2, 3));
  index.add('10.0.0.2:8000', 'GPU', keys(1, 2));
  index.add('10.0.0.2:8000', 'DISK', keys(3, 4, 5));
  index.add('10.0.0.3:8000', 'CPU', keys(1));
  index.add('10.0.0.4:8000', 'GPU', keys(2, 3)); // not from block 0: never matches
  index.reserveSync('10.0.0.3:8000', keys(2, 3), 500);
  return { index, clock };
}

/** The rows as lookup() answers: matched rows only, longest first, ties in row (= candidate) order or by name. */
function asMatches(rows: MatchRows, byName: boolean): PrefixMatch[] {
  const out: PrefixMatch[] = [];
  for (let r = 0; r < rows.count; r++) {
    const m = rows.matched[r];
    if (m === 0) continue;
    const from = r * rows.stride;
    out.push({ endpoint: rows.endpoints[r], matchedBlocks: m, tierMasks: rows.masks.slice(from, from + m) });
  }
  return out.sort((a, b) => b.matchedBlocks - a.matchedBlocks || (byName ? (a.endpoint < b.endpoint ? -1 : 1) : 0));
}

describe('MemoryIndex.lookupRows', () => {
  it('fills rows with exactly what lookup() answers', () => {
    const { index } = known();
    const rows = new MatchRows();
    index.lookupRows(keys(1, 2, 3, 4, 5), undefined, rows);
    expect(rows.count).toBe(3);
    expect(asMatches(rows, true)).toEqual([
      { endpoint: '10.0.0.2:8000', matchedBlocks: 5, tierMasks: Uint32Array.of(1, 1, 8, 8, 8) },
      { endpoint: '10.0.0.1:8000', matchedBlocks: 4, tierMasks: Uint32Array.of(1, 3, 3, 1) },
      { endpoint: '10.0.0.3:8000', matchedBlocks: 3, tierMasks: Uint32Array.of(2, 1 | SPEC, 1 | SPEC) },
    ]);
    expect(asMatches(rows, true)).toEqual(index.lookupSync(keys(1, 2, 3, 4, 5)));
  });

  it('with candidates: a row per known candidate (unmatched ones too), -1 for unknown names, repeats share a row', () => {
    const { index } = known();
    const rows = new MatchRows();
    const candidates = ['10.0.0.9:8000', '10.0.0.2:8000', '10.0.0.4:8000', '10.0.0.2:8000', '10.0.0.1:8000'];
    index.lookupRows(keys(1, 2, 3), { candidates }, rows);
    expect(rows.count).toBe(3);
    expect(rows.endpoints.slice(0, 3)).toEqual(['10.0.0.2:8000', '10.0.0.4:8000', '10.0.0.1:8000']);
    expect(Array.from(rows.matched.subarray(0, 3))).toEqual([3, 0, 3]);
    expect(rows.stride).toBe(3);
    expect(rows.candidateCount).toBe(5);
    expect(Array.from(rows.candidateRow.subarray(0, 5))).toEqual([-1, 0, 1, 0, 2]);
    expect(asMatches(rows, false)).toEqual(index.lookupSync(keys(1, 2, 3), { candidates }));
  });

  it('agrees with lookup() over maxBlocks, expiry and reuse of the same rows', () => {
    const { index, clock } = known();
    const rows = new MatchRows();
    const queries: [BigUint64Array, { candidates?: string[]; maxBlocks?: number }][] = [
      [keys(1, 2, 3, 4, 5), { maxBlocks: 2 }],
      [keys(1, 2, 3, 4, 5), { candidates: ['10.0.0.3:8000', '10.0.0.1:8000'] }],
      [keys(2, 3), {}],
      [keys(9), { candidates: ['10.0.0.1:8000'] }],
      [keys(), { candidates: ['10.0.0.1:8000'] }],
      [keys(1, 2, 3, 4, 5), { candidates: [] }],
    ];
    for (const at of [1_000, 1_600]) {
      clock.now = at;
      for (const [k, options] of queries) {
        index.lookupRows(k, options, rows);
        expect(asMatches(rows, options.candidates === undefined)).toEqual(index.lookupSync(k, options));
      }
    }
    // After expiry 10.0.0.3 holds block 0 on CPU only.
    index.lookupRows(keys(1, 2, 3), { candidates: ['10.0.0.3:8000'] }, rows);
    expect([rows.count, rows.matched[0], rows.masks[0]]).toEqual([1, 1, 2]);
  });

  it('refuses what lookupSync refuses', () => {
    const { index } = known();
    const rows = new MatchRows();
    expect(() => index.lookupRows([1n] as unknown as BigUint64Array, undefined, rows)).toThrow(
      'keys must be a BigUint64Array',
    );
    expect(() => index.lookupRows(keys(1), { maxBlocks: -1 }, rows)).toThrow(
      'maxBlocks must be a non-negative integer',
    );
  });
});
