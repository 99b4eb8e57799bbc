import { describe, expect, it } from 'vitest';
import { decodeEventBatch } from '../../../src/events/decode/index.js';
import { Ingestor } from '../../../src/events/index.js';
import { MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { BlockHasher } from '../../../src/keys/index.js';
import { ConfigSchema } from '../../../src/ops/config.js';
import { DEFAULT_TIER_WEIGHT_TABLE, Scorer, TierWeights, UNKNOWN_TIER_WEIGHT } from '../../../src/scoring/index.js';
import { encode } from '@msgpack/msgpack';

const pack = (v: unknown) => encode(v, { useBigInt64: true });

describe('default tier weights (issue 13 item 4)', () => {
  it('GPU 1.0, host 0.8, disk/storage 0.25 (Dynamo selector.rs), object/external 0.2, remote and unknown 0.1', () => {
    const w = new TierWeights();
    expect(
      [
        'GPU',
        'CPU',
        'CPU_PINNED',
        'DISK',
        'STORAGE',
        'FS',
        'OBJ',
        'EXTERNAL',
        'STORAGE_REMOTE',
        'FS_REMOTE',
        'OBJ_REMOTE',
      ].map((t) => w.weightOf(t)),
    ).toEqual([1, 0.8, 0.8, 0.25, 0.25, 0.25, 0.2, 0.2, 0.1, 0.1, 0.1]);
    // Before this change an unknown tier weighed 1.0, like GPU.
    expect(w.weightOf('SOME_NEW_TIER')).toBe(0.1);
    expect(UNKNOWN_TIER_WEIGHT).toBe(0.1);
    expect(w.toJSON()['*']).toBe(0.1);
  });

  it('the configuration defaults are the scorer table (both read common/tier-weights.ts)', () => {
    const scoring = ConfigSchema.parse({}).scoring;
    expect(scoring.tierWeights).toStrictEqual({ ...DEFAULT_TIER_WEIGHT_TABLE });
    expect(scoring.unknownTierWeight).toBe(0.1);
  });
});

describe('a REMOTE block is its own tier, never credited as local GPU', () => {
  function service() {
    const tiers = new TierRegistry();
    const index = new MemoryIndex({ tiers, shards: 2 });
    const hasher = new BlockHasher({ blockSize: 4, hashSeed: '' });
    const ingestor = new Ingestor({ hasher, writer: index, tiers });
    const scorer = new Scorer(index, tiers, new TierWeights());
    return { index, hasher, ingestor, scorer };
  }

  it('GPU store, then a REMOTE STORAGE placeholder and a LOCAL one: blocks_by_tier shows each, weights differ', async () => {
    const { index, hasher, ingestor, scorer } = service();
    const tokens = [1, 2, 3, 4, 5, 6, 7, 8];
    const gpu = decodeEventBatch(
      pack([
        0,
        [{ type: 'BlockStored', block_hashes: [101, 102], parent_block_hash: null, token_ids: tokens, block_size: 4 }],
      ]),
    );
    ingestor.applySync('pod-a', 'm', gpu.events);
    const remote = decodeEventBatch(
      pack([
        0,
        [
          {
            type: 'BlockStored',
            block_hashes: [101, 102],
            parent_block_hash: null,
            token_ids: [],
            block_size: 0,
            medium: 'STORAGE',
            locality: 'REMOTE',
            ownership: 'fs',
          },
        ],
      ]),
    );
    expect(remote.events[0]).toMatchObject({ medium: 'STORAGE_REMOTE', locality: 'REMOTE', ownership: 'fs' });
    ingestor.applySync('pod-a', 'm', remote.events);
    const local = decodeEventBatch(
      pack([
        0,
        [
          {
            type: 'BlockStored',
            block_hashes: [101],
            parent_block_hash: null,
            token_ids: [],
            block_size: 0,
            medium: 'STORAGE',
            locality: 'LOCAL',
          },
        ],
      ]),
    );
    ingestor.applySync('pod-a', 'm', local.events);
    expect(index.endpointEntriesSync('pod-a')).toEqual({ GPU: 2, STORAGE_REMOTE: 2, STORAGE: 1 });

    // GPU copies evicted: the REMOTE copy alone is worth 0.1 a block, never 1.0.
    ingestor.applySync('pod-a', 'm', decodeEventBatch(pack([0, [['BlockRemoved', [101, 102], null]]])).events);
    const prompt = hasher.keysFor('m', Uint32Array.from(tokens));
    const [s] = (await scorer.score(prompt, { candidates: ['pod-a'] })).scores;
    expect(s.matchedBlocks).toBe(2);
    expect(s.blocksByTier).toEqual({ STORAGE: 1, STORAGE_REMOTE: 1 });
    expect(s.weighted).toBeCloseTo(0.25 + 0.1, 12);

    // A REMOTE removal leaves the remote tier only; the LOCAL storage copy stays.
    ingestor.applySync(
      'pod-a',
      'm',
      decodeEventBatch(
        pack([0, [{ type: 'BlockRemoved', block_hashes: [101, 102], medium: 'STORAGE', locality: 'REMOTE' }]]),
      ).events,
    );
    expect(index.endpointEntriesSync('pod-a')).toEqual({ STORAGE: 1 });
  });

  it('an unknown locality changes nothing in the index and is a counted, named issue', () => {
    const { index, ingestor } = service();
    const batch = decodeEventBatch(
      pack([
        0,
        [
          {
            type: 'BlockStored',
            block_hashes: [7],
            parent_block_hash: null,
            token_ids: [1, 2, 3, 4],
            block_size: 4,
            medium: 'STORAGE',
            locality: 'NEARBY',
          },
        ],
      ]),
    );
    expect(batch.events).toEqual([]);
    expect(batch.issues).toStrictEqual([
      {
        reason: 'unknown_locality',
        eventIndex: 0,
        field: 'events[0].locality',
        message: 'unknown locality "NEARBY" (expected LOCAL, REMOTE or nil)',
      },
    ]);
    ingestor.applySync('pod-a', 'm', batch.events);
    expect(index.endpointEntriesSync('pod-a')).toEqual({});
  });
});
