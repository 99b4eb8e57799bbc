import { describe, expect, it } from 'vitest';
import { MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { Scorer, TierWeights } from '../../../src/scoring/index.js';

const keys = (...v: number[]) => BigUint64Array.from(v.map(BigInt));

function setup(now = 1_000) {
  const tiers = new TierRegistry();
  let clock = now;
  const index = new MemoryIndex({ tiers, shards: 4, clock: () => clock });
  const scorer = new Scorer(index, tiers, new TierWeights({ weights: { GPU: 1, CPU: 0.8, DISK: 0.5 } }));
  return { index, scorer, advance: (ms: number) => (clock += ms) };
}

describe('Scorer', () => {
  it('stops an endpoint at its first missing block even if it holds later ones', async () => {
    const { index, scorer } = setup();
    index.add('a', 'GPU', keys(1, 2, 4, 5));
    index.add('b', 'GPU', keys(1, 2, 3));
    const r = await scorer.score(keys(1, 2, 3, 4, 5), { candidates: ['a', 'b', 'c'] });
    expect(r.totalBlocks).toBe(5);
    expect(r.scores.map((s) => [s.endpoint, s.matchedBlocks, s.normalized])).toEqual([
      ['a', 2, 0.4],
      ['b', 3, 0.6],
      ['c', 0, 0],
    ]);
  });

  it('weights each block by the best tier the endpoint has for it', async () => {
    const { index, scorer } = setup();
    index.add('a', 'GPU', keys(1));
    index.add('a', 'CPU', keys(1, 2));
    index.add('a', 'DISK', keys(3));
    index.add('a', 'OBJ', keys(4));
    const [s] = (await scorer.score(keys(1, 2, 3, 4), { candidates: ['a'] })).scores;
    expect(s.matchedBlocks).toBe(4);
    expect(s.weighted).toBeCloseTo(1 + 0.8 + 0.5 + 0.1, 12); // OBJ is unlisted here → the unknown-tier weight 0.1
    expect(s.blocksByTier).toEqual({ GPU: 1, CPU: 1, DISK: 1, OBJ: 1 });
    // Per-request weights override the configured ones.
    const [o] = (await scorer.score(keys(1, 2, 3, 4), { candidates: ['a'], tierWeights: { cpu: 0.1, obj: 0 } })).scores;
    expect(o.weighted).toBeCloseTo(1 + 0.1 + 0.5 + 0, 12);
  });

  it('reports speculative blocks, which a confirming store replaces and which expire', async () => {
    const { index, scorer, advance } = setup();
    index.add('a', 'GPU', keys(1));
    await index.reserve('a', keys(1, 2, 3), 2_000);
    let [s] = (await scorer.score(keys(1, 2, 3), { candidates: ['a'] })).scores;
    expect([s.matchedBlocks, s.speculativeBlocks, s.weighted]).toEqual([3, 2, 3]);
    index.add('a', 'GPU', keys(2));
    [s] = (await scorer.score(keys(1, 2, 3), { candidates: ['a'] })).scores;
    expect([s.matchedBlocks, s.speculativeBlocks]).toEqual([3, 1]);
    advance(2_001);
    [s] = (await scorer.score(keys(1, 2, 3), { candidates: ['a'] })).scores;
    expect([s.matchedBlocks, s.speculativeBlocks]).toEqual([2, 0]);
  });

  it('gives an empty prompt zero blocks and zero scores for every candidate', async () => {
    const { index, scorer } = setup();
    index.add('a', 'GPU', keys(1));
    const r = await scorer.score(keys(), { candidates: ['a', 'b'] });
    expect(r).toEqual({
      totalBlocks: 0,
      scores: [
        { endpoint: 'a', matchedBlocks: 0, weighted: 0, normalized: 0, blocksByTier: {}, speculativeBlocks: 0 },
        { endpoint: 'b', matchedBlocks: 0, weighted: 0, normalized: 0, blocksByTier: {}, speculativeBlocks: 0 },
      ],
    });
  });

  it('caps the walk at maxBlocks and normalises by the blocks considered', async () => {
    const { index, scorer } = setup();
    index.add('a', 'GPU', keys(1, 2, 3, 4));
    const r = await scorer.score(keys(1, 2, 3, 4), { candidates: ['a'], maxBlocks: 2 });
    expect([r.totalBlocks, r.scores[0].matchedBlocks, r.scores[0].normalized]).toEqual([2, 2, 1]);
  });

  it('without candidates, lists every matching endpoint best first', async () => {
    const { index, scorer } = setup();
    index.add('a', 'GPU', keys(1));
    index.add('b', 'GPU', keys(1, 2));
    index.add('c', 'CPU', keys(1, 2));
    const r = await scorer.score(keys(1, 2, 3));
    expect(r.scores.map((s) => [s.endpoint, s.matchedBlocks, s.weighted])).toEqual([
      ['b', 2, 2],
      ['c', 2, 1.6],
      ['a', 1, 1],
    ]);
  });

  it('rejects invalid tier weights', () => {
    expect(() => new TierWeights({ weights: { GPU: -1 } })).toThrow(
      /tier weight for "GPU" must be a finite number ≥ 0/,
    );
  });
});
