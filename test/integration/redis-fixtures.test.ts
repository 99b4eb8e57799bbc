import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventPipeline, Ingestor } from '../../src/events/index.js';
import { readRecording } from '../../src/events/recording/format.js';
import { playIntoPipeline } from '../../src/events/recording/player.js';
import { MemoryIndex, RedisIndex, TierRegistry, type Index } from '../../src/index/index.js';
import { blockExtras } from '../../src/keys/extras.js';
import { BlockHasher } from '../../src/keys/index.js';
import { Scorer } from '../../src/scoring/index.js';
import { loadExpected, RECORDINGS } from '../support/fixture-check.js';
import { startCluster, startRedis, type RedisCluster, type RedisServer } from '../support/redis-server.js';

const quiet = { warn: () => undefined, info: () => undefined };
let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

/** Feeds a recording through the real ingest path into an index; returns per-endpoint counts and every sample's Score. */
async function ingestAndScore(name: string, index: Index, tiers: TierRegistry) {
  const expected = loadExpected(name);
  const hasher = new BlockHasher({ blockSize: expected.blockSize, hashSeed: expected.hashSeed });
  const ingestor = new Ingestor({ hasher, writer: index, tiers });
  const pipeline = new EventPipeline(ingestor, quiet);
  await playIntoPipeline(pipeline, readRecording(new URL(`${name}.kvrec.gz`, RECORDINGS).pathname).messages);
  await index.flush();
  const candidates = Object.keys(expected.endpoints);
  const endpoints: Record<string, Record<string, number>> = {};
  for (const id of candidates) endpoints[id] = await index.endpointEntries(id);
  const scorer = new Scorer(index, tiers);
  const scores = [];
  for (const s of expected.samples) {
    const keys = hasher.keysFor(s.model, s.tokens, blockExtras(s.items, s.tokens.length, expected.blockSize));
    scores.push(await scorer.score(keys, { candidates }));
  }
  return { endpoints, scores, expected };
}

describe.each(['fleet-mixed', 'offload-pressure'])('fixture recording %s into Redis', (name) => {
  it('gives the same index state and the same Scores as the in-memory index', async () => {
    const memTiers = new TierRegistry();
    const mem = await ingestAndScore(name, new MemoryIndex({ tiers: memTiers }), memTiers);
    const tiers = new TierRegistry();
    const index = await RedisIndex.open({ url: server.url, keyPrefix: `${name}:`, tiers });
    try {
      const redis = await ingestAndScore(name, index, tiers);
      expect(redis.endpoints).toEqual(mem.endpoints);
      expect(redis.endpoints).toEqual(mem.expected.endpoints);
      expect(redis.scores).toEqual(mem.scores);
      expect(mem.scores.some((r) => r.scores.some((c) => c.matchedBlocks > 0))).toBe(true);
      expect(index.pendingResync()).toEqual([]);
    } finally {
      await index.close();
    }
  });
});

describe('fixture recordings into a 3-master Redis Cluster, chains placed by the anchors ingest passes', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startCluster(3);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it.each(['fleet-mixed', 'offload-pressure'])(
    '%s: same state and Scores as memory, every key anchored, spread over masters',
    async (name) => {
      const memTiers = new TierRegistry();
      const mem = await ingestAndScore(name, new MemoryIndex({ tiers: memTiers }), memTiers);
      const tiers = new TierRegistry();
      const index = await RedisIndex.open({ cluster: cluster.startupNodes, keyPrefix: `${name}:`, tiers });
      try {
        expect(index.needsAnchors).toBe(true);
        const redis = await ingestAndScore(name, index, tiers);
        expect(redis.endpoints).toEqual(mem.expected.endpoints);
        expect(redis.scores).toEqual(mem.scores);
        expect((await index.stats()).unanchoredKeys).toBe(0);
        const perMaster = cluster.nodes.map((n) =>
          Number(n.cli('EVAL', `return #redis.call('KEYS', ARGV[1])`, '0', `${name}:{t*`).trim()),
        );
        expect(perMaster.filter((k) => k > 0).length).toBeGreaterThanOrEqual(2);
      } finally {
        await index.close();
      }
    },
  );
});
