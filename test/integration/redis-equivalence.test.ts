import fc from 'fast-check';
import { ENDPOINTS, indexOp, KEYS, type IndexOp } from '../support/index-ops.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryIndex, RedisIndex, TierRegistry, type Index } from '../../src/index/index.js';
import { Scorer, TierWeights } from '../../src/scoring/index.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { plain } from '../unit/index/helpers.js';

/**
 * Random workloads over small universes (repeats and shared keys are the norm) applied to a MemoryIndex and a
 * RedisIndex with the same clock: every lookup, Score, release count and per-endpoint count must agree exactly.
 * Writes are batched between flushes; a flush precedes reserve/release/clear (which Redis applies immediately or
 * in batch order) and every read. Half the runs split flushes into APPLY calls of at most 3 keys; endpoint key sets
 * use 1, 3 or 4096 buckets.
 */

const TIERS = ['GPU', 'cpu', 'Disk', 'NVME'];

type Op = IndexOp;

const op = indexOp(TIERS);
const query = fc.record({
  chain: fc.array(fc.constantFrom(...KEYS), { minLength: 0, maxLength: 8 }),
  candidates: fc.option(fc.array(fc.constantFrom(...ENDPOINTS, 'unknown'), { maxLength: 5 }), { nil: undefined }),
  maxBlocks: fc.option(fc.nat({ max: 8 }), { nil: undefined }),
  ahead: fc.option(fc.nat({ max: 40 }), { nil: undefined }),
});

let server: RedisServer;
let runs = 0;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

type Query = { chain: bigint[]; candidates?: string[]; maxBlocks?: number; ahead?: number };

/** Applies one workload to both indexes and compares everything observable. */
async function compare(ops: Op[], queries: Query[], maxKeysPerScript: number, endpointBuckets: number): Promise<void> {
  let now = 1_000;
  const clock = () => now;
  const weights = new TierWeights({ weights: { GPU: 1, CPU: 0.8, DISK: 0.5, NVME: 0.3 } });
  const memTiers = new TierRegistry();
  const redisTiers = new TierRegistry();
  const mem = new MemoryIndex({ tiers: memTiers, clock, maxEntries: 10_000 });
  const redis = await RedisIndex.open({
    url: server.url,
    keyPrefix: `eq${++runs}:`,
    tiers: redisTiers,
    clock,
    maxKeysPerScript,
    endpointBuckets,
  });
  try {
    const both: Index[] = [mem, redis];
    for (const o of ops) {
      const ks = 'keys' in o ? BigUint64Array.from(o.keys) : new BigUint64Array(0);
      if (o.kind === 'tick') now += o.ms;
      else if (o.kind === 'add') both.forEach((i) => i.add(o.endpoint, o.tier, ks));
      else if (o.kind === 'remove') both.forEach((i) => i.remove(o.endpoint, o.tier, ks));
      else {
        await redis.flush();
        if (o.kind === 'clear') both.forEach((i) => i.clearEndpoint(o.endpoint));
        else if (o.kind === 'reserve') await Promise.all(both.map((i) => i.reserve(o.endpoint, ks, o.ttl)));
        else expect(await redis.release(o.endpoint, ks)).toBe(await mem.release(o.endpoint, ks));
      }
    }
    await redis.flush();
    const memScorer = new Scorer(mem, memTiers, weights);
    const redisScorer = new Scorer(redis, redisTiers, weights);
    for (const q of queries) {
      const chain = BigUint64Array.from(q.chain);
      const at = q.ahead === undefined ? undefined : now + q.ahead;
      const options = { candidates: q.candidates, maxBlocks: q.maxBlocks, now: at };
      expect(plain(await redis.lookup(chain, options))).toEqual(plain(await mem.lookup(chain, options)));
      if (q.ahead === undefined) {
        const so = { candidates: q.candidates, maxBlocks: q.maxBlocks };
        expect(await redisScorer.score(chain, so)).toEqual(await memScorer.score(chain, so));
      }
    }
    for (const e of ENDPOINTS) expect(await redis.endpointEntries(e)).toEqual(await mem.endpointEntries(e));
    const [m, r] = [await mem.stats(), await redis.stats()];
    const pick = (s: typeof m | typeof r) => [s.entries, s.keys, s.speculativeEntries, s.endpoints, s.removesOfUnknown];
    expect(pick(r)).toEqual(pick(m));
  } finally {
    await Promise.all([mem.close(), redis.close()]);
  }
}

describe('RedisIndex against MemoryIndex (property)', () => {
  it('agrees on lookups, Score, release counts and counts after random workloads', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { maxLength: 30 }),
        fc.array(query, { minLength: 1, maxLength: 8 }),
        fc.constantFrom(3, 16_384),
        fc.constantFrom(1, 3, 4096),
        compare,
      ),
      { numRuns: 150 },
    );
  });
});
