import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MatchRows, MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { NO_BLOCKS_BY_TIER, scoreMatches, scoreRows, Scorer, TierWeights } from '../../../src/scoring/index.js';

const keys = (...v: number[]) => BigUint64Array.from(v.map(BigInt));
const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const C = '10.0.0.3:8000';
const D = '10.0.0.4:8000';

function known() {
  const tiers = new TierRegistry();
  const index = new MemoryIndex({ tiers, shards: 4, clock: () => 1_000 });
  index.add(A, 'GPU', keys(1, 2, 3, 4));
  index.add(A, 'CPU', keys(2, 3));
  index.add(B, 'GPU', keys(1, 2));
  index.add(B, 'DISK', keys(3, 4, 5));
  index.add(C, 'CPU', keys(1));
  index.add(C, 'EXTERNAL', keys(1, 2));
  index.add(D, 'GPU', keys(2, 3));
  index.reserveSync(C, keys(2, 3), 500);
  return { index, tiers };
}

/** The old scoring (lookup → scoreMatches) and the new (lookupRows → scoreRows) of one query. */
function both(
  index: MemoryIndex,
  tiers: TierRegistry,
  k: BigUint64Array,
  weights: TierWeights,
  candidates?: string[],
  maxBlocks?: number,
) {
  const total = Math.min(k.length, maxBlocks || k.length);
  const rows = new MatchRows();
  index.lookupRows(k, { candidates, maxBlocks: total }, rows);
  return {
    old: scoreMatches(index.lookupSync(k, { candidates, maxBlocks: total }), total, weights, tiers, candidates),
    rows: scoreRows(rows, total, weights, tiers, candidates),
  };
}

describe('scoreRows', () => {
  const weights = new TierWeights();

  it('gives the exact scores scoreMatches gives', () => {
    const { index, tiers } = known();
    const { old, rows } = both(index, tiers, keys(1, 2, 3, 4, 5), weights, [C, '10.0.0.9:8000', A, B, D]);
    expect(rows).toEqual(old);
    expect(rows).toEqual({
      totalBlocks: 5,
      scores: [
        {
          endpoint: C,
          matchedBlocks: 3,
          // block 1: CPU (0.8) beats EXTERNAL; block 2: EXTERNAL (0.2), the reservation added nothing to a block
          // already held; block 3: speculative only (counts as GPU, 1.0).
          weighted: 2,
          normalized: 0.4,
          blocksByTier: { CPU: 1, EXTERNAL: 1, GPU: 1 },
          speculativeBlocks: 1,
        },
        {
          endpoint: '10.0.0.9:8000',
          matchedBlocks: 0,
          weighted: 0,
          normalized: 0,
          blocksByTier: {},
          speculativeBlocks: 0,
        },
        {
          endpoint: A,
          matchedBlocks: 4,
          weighted: 4,
          normalized: 0.8,
          blocksByTier: { GPU: 4 },
          speculativeBlocks: 0,
        },
        {
          endpoint: B,
          matchedBlocks: 5,
          weighted: 2.75,
          normalized: 0.55,
          blocksByTier: { GPU: 2, DISK: 3 },
          speculativeBlocks: 0,
        },
        { endpoint: D, matchedBlocks: 0, weighted: 0, normalized: 0, blocksByTier: {}, speculativeBlocks: 0 },
      ],
    });
    // Candidates that matched nothing share one frozen empty blocksByTier.
    expect(rows.scores[1].blocksByTier).toBe(NO_BLOCKS_BY_TIER);
    expect(rows.scores[4].blocksByTier).toBe(NO_BLOCKS_BY_TIER);
    expect(Object.isFrozen(NO_BLOCKS_BY_TIER)).toBe(true);
  });

  it('agrees on repeated and unknown candidates, no candidates, per-request weights and maxBlocks', () => {
    const { index, tiers } = known();
    const custom = weights.with({ disk: 2, external: 0.9, cpu: 0 });
    const cases: [string[] | undefined, TierWeights, number | undefined][] = [
      [undefined, weights, undefined],
      [undefined, custom, 3],
      [[A, A, B, A], weights, undefined],
      [['10.0.0.8:1', '10.0.0.9:1', '10.0.0.8:1', C, '10.0.0.9:1', C, '10.0.0.7:1'], custom, undefined],
      [[D], weights, 2],
      [[B, C], custom, 1],
    ];
    for (const [candidates, w, maxBlocks] of cases) {
      for (const k of [keys(1, 2, 3, 4, 5), keys(1), keys(7, 1)]) {
        const { old, rows } = both(index, tiers, k, w, candidates, maxBlocks);
        expect(rows).toEqual(old);
      }
    }
  });

  it('agrees with scoreMatches on random indexes and queries', () => {
    const endpoint = fc.constantFrom(A, B, C, D, '10.0.0.5:8000');
    const tier = fc.constantFrom('GPU', 'CPU', 'DISK', 'OBJ', 'STORAGE_REMOTE', 'NEW_TIER');
    const key = fc.integer({ min: 1, max: 12 });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(endpoint, tier, fc.array(key, { maxLength: 12 })), { maxLength: 20 }),
        fc.array(fc.tuple(endpoint, fc.array(key, { maxLength: 6 })), { maxLength: 4 }),
        fc.array(key, { maxLength: 12 }),
        fc.option(fc.array(fc.oneof(endpoint, fc.constant('10.0.0.9:1')), { maxLength: 8 }), { nil: undefined }),
        fc.nat({ max: 14 }),
        (adds, reserves, query, candidates, maxBlocks) => {
          const tiers = new TierRegistry();
          const index = new MemoryIndex({ tiers, shards: 2, clock: () => 1_000 });
          for (const [e, t, k] of adds) index.add(e, t, keys(...k));
          for (const [e, k] of reserves) index.reserveSync(e, keys(...k), 100);
          const { old, rows } = both(index, tiers, keys(...query), weights, candidates, maxBlocks);
          expect(rows).toEqual(old);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('Scorer.scoreNow', () => {
  it('answers as score() does, synchronously, for the memory index', async () => {
    const { index, tiers } = known();
    const scorer = new Scorer(index, tiers, new TierWeights());
    expect(scorer.synchronous).toBe(true);
    const options = { candidates: [B, A, '10.0.0.9:8000'], maxBlocks: 4 };
    const now = scorer.scoreNow(keys(1, 2, 3, 4, 5), options);
    expect(now).toEqual(await scorer.score(keys(1, 2, 3, 4, 5), options));
    expect(now.scores.map((s) => [s.endpoint, s.matchedBlocks, s.weighted])).toEqual([
      [B, 4, 2.5],
      [A, 4, 4],
      ['10.0.0.9:8000', 0, 0],
    ]);
  });

  it('is unavailable for an index without lookupRows (Redis), which score() reads through lookup()', async () => {
    const { index, tiers } = known();
    const remote = {
      backend: 'redis' as const,
      lookup: (k: BigUint64Array, o: Parameters<MemoryIndex['lookup']>[1]) => index.lookup(k, o),
    } as unknown as MemoryIndex;
    const scorer = new Scorer(remote, tiers, new TierWeights());
    expect(scorer.synchronous).toBe(false);
    expect(() => scorer.scoreNow(keys(1))).toThrow('the redis index cannot be read synchronously');
    const local = new Scorer(index, tiers, new TierWeights());
    const options = { candidates: [C, A] };
    expect(await scorer.score(keys(1, 2, 3), options)).toEqual(await local.score(keys(1, 2, 3), options));
  });
});
