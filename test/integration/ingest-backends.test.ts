import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ingestor, type StoreBound } from '../../src/events/ingest/index.js';
import { MemoryIndex, RedisIndex, TierRegistry, type Index } from '../../src/index/index.js';
import { BlockHasher } from '../../src/keys/index.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { mulberry32, SpanModel } from '../support/span-model.js';

/**
 * The write-path rules of issue 13 live in ingest (spans, store bounds, key-only chunk removals), so the memory and
 * Redis backends must end up with the same entries: the same seeded model-engine sequences are applied to an
 * Ingestor over a MemoryIndex and one over a RedisIndex (a real redis-server), and every prompt's per-block tier
 * masks must agree after every step — and with the model engine when no bound drops blocks.
 */

let server: RedisServer;
let runs = 0;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

async function masks(index: Index, keys: BigUint64Array, endpoint: string): Promise<number[]> {
  const match = (await index.lookup(keys, { candidates: [endpoint] }))[0];
  return match ? [...match.tierMasks.subarray(0, match.matchedBlocks)] : [];
}

describe('ingest over memory and Redis: identical entries (seeded model engine)', () => {
  const cases: [number, number, StoreBound | null][] = [
    [16, 64, null],
    [64, 16, null],
    [32, 64, { maxBlocks: 6, ttlMs: null }],
    [16, 16, { maxBlocks: 5, ttlMs: null }],
  ];
  for (const [eb, B, bound] of cases) {
    it(`engine ${eb} / canonical ${B}${bound ? `, store bound ${bound.maxBlocks} blocks` : ''}`, async () => {
      for (let run = 0; run < 4; run++) {
        const random = mulberry32(0xbac0 + run * 31 + eb + B);
        const model = new SpanModel(random, eb, B, 2);
        const hasher = new BlockHasher({ blockSize: B, hashSeed: '' });
        const memTiers = new TierRegistry();
        const redisTiers = new TierRegistry();
        const mem = new MemoryIndex({ tiers: memTiers, shards: 2 });
        const redis = await RedisIndex.open({ url: server.url, keyPrefix: `ingest${++runs}:`, tiers: redisTiers });
        try {
          const onMem = new Ingestor({ hasher, writer: mem, tiers: memTiers, defaultStoreBound: bound });
          const onRedis = new Ingestor({ hasher, writer: redis, tiers: redisTiers, defaultStoreBound: bound });
          const endpoints = ['ep0', 'ep1'];
          const keys = model.prompts.map((p) => hasher.keysFor('m', p));
          for (let step = 0; step < 60; step++) {
            const { ep, events } = model.step();
            await onMem.apply(endpoints[ep], 'm', events);
            await onRedis.apply(endpoints[ep], 'm', events);
            for (let e = 0; e < endpoints.length; e++) {
              for (let p = 0; p < keys.length; p++) {
                const fromMem = await masks(mem, keys[p], endpoints[e]);
                const fromRedis = await masks(redis, keys[p], endpoints[e]);
                const want = bound ? fromMem : model.expected(e, p);
                if (fromMem.join() !== want.join() || fromRedis.join() !== fromMem.join()) {
                  throw new Error(
                    `run ${run} step ${step} ep ${e} prompt ${p}: memory ${fromMem} redis ${fromRedis} model ${want}`,
                  );
                }
              }
            }
          }
          expect({ ...onRedis.counters, skippedByKind: 0 }).toEqual({ ...onMem.counters, skippedByKind: 0 });
          if (bound) expect(onMem.counters.boundDrops).toBeGreaterThan(0);
          for (const e of endpoints) expect(await redis.endpointEntries(e)).toEqual(mem.endpointEntriesSync(e));
        } finally {
          await redis.close();
        }
      }
    });
  }
});
