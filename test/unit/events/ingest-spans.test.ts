import { describe, expect, it } from 'vitest';
import { Ingestor } from '../../../src/events/ingest/index.js';
import { MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { BlockHasher } from '../../../src/keys/index.js';
import { Scorer } from '../../../src/scoring/index.js';
import { removed, seq, stored } from '../../support/events.js';
import { mulberry32, SpanModel } from '../../support/span-model.js';

/**
 * A canonical block made of several engine blocks is held on an endpoint and tier only while every engine block it
 * spans is held there (spec/block-keys.md).
 */

function setup(blockSize: number) {
  const tiers = new TierRegistry();
  const hasher = new BlockHasher({ blockSize, hashSeed: '' });
  const index = new MemoryIndex({ tiers, shards: 2 });
  const ingestor = new Ingestor({ hasher, writer: index, tiers });
  return { tiers, hasher, index, ingestor, scorer: new Scorer(index, tiers) };
}

describe('ingest: canonical blocks made of several engine blocks (peer vectors)', () => {
  // llm-d's TestCanonicalEviction_Eager (llm-d/llm-d-kv-cache, pkg/kvevents pool canonical-block tests):
  // canonical block 64, 128 tokens [1..128] stored as 8 engine keys 100..107 of 16 tokens, parent nil, on pod-a;
  // removing engine key 100 evicts canonical key 0 (1 of its 4 engine blocks gone) and leaves canonical key 1.
  it('llm-d TestCanonicalEviction_Eager: removing one engine block of four leaves 0 matched blocks', async () => {
    const t = setup(64);
    const engineKeys = [100, 101, 102, 103, 104, 105, 106, 107];
    t.ingestor.applySync('pod-a', 'test-model', [stored(engineKeys, null, seq(128), 16)]);
    const canonical = t.hasher.keysFor('test-model', seq(128));
    expect(canonical.length).toBe(2);
    const scoreOf = async (keys: BigUint64Array) =>
      (await t.scorer.score(keys, { candidates: ['pod-a'] })).scores.find((s) => s.endpoint === 'pod-a')!.matchedBlocks;
    expect(await scoreOf(canonical)).toBe(2);

    t.ingestor.applySync('pod-a', 'test-model', [removed([100])]);
    // We answered 2 before (the block stayed while any of its engine blocks was held); llm-d expects 0.
    expect(await scoreOf(canonical)).toBe(0);
    // Canonical key 0 is gone, canonical key 1 still has pod-a (its four engine blocks are all held).
    expect(await scoreOf(canonical.subarray(0, 1))).toBe(0);
    expect((await t.index.lookup(canonical.subarray(1, 2))).map((m) => [m.endpoint, m.matchedBlocks])).toEqual([
      ['pod-a', 1],
    ]);
    expect(t.index.entriesOf('pod-a')).toBe(1);
    // The other three engine blocks of canonical block 0 are still known (their removal is exact, not "unknown").
    t.ingestor.applySync('pod-a', 'test-model', [removed([101, 102, 103])]);
    expect(t.ingestor.counters.removedUnknown).toBe(0);
    expect(t.ingestor.engineKeyCount('pod-a')).toBe(4);
  });

  // llm-d's TestCanonicalEviction_OneToMany: engine block 128 over canonical 64; evicting engine key 0 removes
  // canonical keys 0 and 1, keys 2 and 3 remain.
  it('llm-d TestCanonicalEviction_OneToMany: one engine block removes every canonical block inside it', async () => {
    const t = setup(64);
    t.ingestor.applySync('pod-c', 'test-model', [stored([300, 301], null, seq(256), 128)]);
    const canonical = t.hasher.keysFor('test-model', seq(256));
    t.ingestor.applySync('pod-c', 'test-model', [removed([300])]);
    for (let k = 0; k < 4; k++) {
      const match = await t.index.lookup(canonical.subarray(k, k + 1));
      expect(match.length).toBe(k < 2 ? 0 : 1);
    }
  });

  it('re-adds the canonical block when the missing engine block is stored again, once per tier', async () => {
    const t = setup(64);
    t.ingestor.applySync('a', 'm', [stored([1, 2, 3, 4], null, seq(64), 16)]);
    t.ingestor.applySync('a', 'm', [removed([2])]);
    expect(t.index.entriesOf('a')).toBe(0);
    // Duplicate stores of the other pieces change nothing; the missing piece completes the block again.
    t.ingestor.applySync('a', 'm', [stored([1], null, seq(16), 16), stored([1, 2, 3, 4], null, seq(64), 16)]);
    expect(t.index.entriesOf('a')).toBe(1);
    expect(t.ingestor.counters.requestKeysAdded).toBe(2);
    // Block 1 is held twice, block 2 once: one removal of 1 keeps the block, a removal of 2 drops it.
    t.ingestor.applySync('a', 'm', [removed([1])]);
    expect(t.index.entriesOf('a')).toBe(1);
    t.ingestor.applySync('a', 'm', [removed([2])]);
    expect(t.index.entriesOf('a')).toBe(0);
  });

  it('a branch inside a canonical block: the shared engine blocks belong to both canonical blocks', async () => {
    const t = setup(64);
    // Two prompts share their first 32 tokens (engine blocks 1, 2) and differ after.
    const p1 = seq(64);
    const p2 = [...seq(32), ...seq(32, 500)];
    t.ingestor.applySync('a', 'm', [stored([1, 2, 3, 4], null, p1, 16)]);
    t.ingestor.applySync('a', 'm', [stored([1, 2, 33, 34], null, p2, 16)]);
    expect(t.index.entriesOf('a')).toBe(2);
    // Engine block 1 was stored twice (once per prompt): the first removal leaves it held.
    t.ingestor.applySync('a', 'm', [removed([1])]);
    expect(t.index.entriesOf('a')).toBe(2);
    t.ingestor.applySync('a', 'm', [removed([1])]);
    expect(t.index.entriesOf('a')).toBe(0);
    expect(t.ingestor.counters.removedUnknown).toBe(0);
    // Stored again, it completes both canonical blocks again.
    t.ingestor.applySync('a', 'm', [stored([1], null, seq(16), 16)]);
    expect(t.index.entriesOf('a')).toBe(2);
  });
});

describe('ingest: span rule against a model engine (seeded property)', () => {
  const configs: [number, number][] = [
    [16, 16],
    [32, 16],
    [64, 16],
    [16, 64],
    [32, 64],
    [64, 64],
  ];
  for (const [eb, B] of configs) {
    it(`engine block ${eb}, canonical ${B}: the index answers what the model engine holds after every step`, async () => {
      const seen = { keyOnly: 0, duplicates: 0, removed: 0 };
      for (let run = 0; run < 20; run++) {
        const random = mulberry32(0x5eed + run * 7919 + eb * 131 + B);
        const model = new SpanModel(random, eb, B, 2);
        const t = setup(B);
        const endpoints = ['ep0', 'ep1'];
        const keys = model.prompts.map((p) => t.hasher.keysFor('m', p));
        for (let step = 0; step < 100; step++) {
          const { ep, events } = model.step();
          t.ingestor.applySync(endpoints[ep], 'm', events);
          for (let e = 0; e < endpoints.length; e++) {
            for (let p = 0; p < keys.length; p++) {
              const match = t.index.lookupSync(keys[p], { candidates: [endpoints[e]] })[0];
              const got = match ? [...match.tierMasks.subarray(0, match.matchedBlocks)] : [];
              const want = model.expected(e, p);
              if (got.join() !== want.join()) {
                throw new Error(
                  `seed run ${run} step ${step} ep ${e} prompt ${p}: index ${JSON.stringify(got)} model ${JSON.stringify(want)}`,
                );
              }
            }
          }
        }
        seen.keyOnly += t.ingestor.counters.keyOnlyRemovals;
        seen.duplicates += t.ingestor.counters.duplicateStores;
        seen.removed += t.ingestor.counters.blocksRemoved;
        // Clearing both endpoints leaves nothing behind, in the index or in the bridge.
        for (const e of endpoints) t.ingestor.applySync(e, 'm', [{ type: 'AllBlocksCleared' }]);
        expect(t.index.statsSync().entries).toBe(0);
      }
      // The sequences did exercise duplicates, removals and key-only chunk removals.
      expect(Math.min(seen.keyOnly, seen.duplicates, seen.removed)).toBeGreaterThan(0);
    });
  }
});
