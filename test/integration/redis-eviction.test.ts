import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisIndex, UnsafeEvictionPolicyError } from '../../src/index/index.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

const PREFIX = 'ev:';
const keysFrom = (from: number, n: number) =>
  BigUint64Array.from({ length: n }, (_, i) => (BigInt(from + i) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn);
const REGISTRY = ['eid', 'ename', 'eseq', 'gen'].map((k) => `${PREFIX}{m}${k}`);

/**
 * Issue 17 bug 2 on a real redis-server: with `maxmemory-policy allkeys-lru` Redis evicts the endpoint registry while
 * block keys survive; a new pod then got a reused id (the sequence restarted at 1) and was credited with another pod's
 * cached blocks. Now an `allkeys-*` policy is refused at open, and when the registry is lost anyway (here: the policy
 * changed at run time and memory filled) no id is reused and the writer notices and resynchronises.
 */
describe('Redis eviction and the endpoint registry', () => {
  let server: RedisServer;
  let raw: Redis;
  const opened: RedisIndex[] = [];
  const open = async (allowUnsafeEviction = false) => {
    const index = await RedisIndex.open({
      url: server.url,
      keyPrefix: PREFIX,
      allowUnsafeEviction,
      registryCheckMs: 60_000,
    });
    opened.push(index);
    return index;
  };

  beforeAll(async () => {
    server = await startRedis();
    raw = new Redis(server.url);
  });
  afterAll(async () => {
    for (const i of opened) await i.close();
    raw?.disconnect();
    await server?.stop();
  });

  it('refuses to open on an allkeys-* policy, naming the setting; accepts volatile-lru and noeviction', async () => {
    await raw.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const err = await RedisIndex.open({ url: server.url, keyPrefix: PREFIX }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeEvictionPolicyError);
    expect((err as Error).message).toMatch(
      /^maxmemory-policy allkeys-lru is unsafe: Redis may evict the endpoint-id registry/,
    );
    for (const policy of ['volatile-lru', 'noeviction']) {
      await raw.config('SET', 'maxmemory-policy', policy);
      await (await open()).close();
    }
  });

  it('a registry evicted under memory pressure never gives a new pod an old id, and the writer resynchronises', async () => {
    const podA = await open();
    const K = keysFrom(1, 8);
    podA.add('10.0.0.1:8000', 'GPU', K);
    await podA.flush();
    expect((await podA.lookup(K, { candidates: ['10.0.0.1:8000'] }))[0].matchedBlocks).toBe(8);
    await podA.checkRegistry();
    // Redis's LRU clock ticks once a second: let the registry age past it, so that its keys are older than pod A's
    // block keys (touched below at every round) whatever the machine's speed; else both look equally idle and an
    // eviction may take the block keys first, leaving nothing to credit wrongly.
    await new Promise((r) => setTimeout(r, 2_100));

    // Memory fills under allkeys-lru (set at run time, after the start-up check): fill until part of the registry is
    // evicted, touching pod A's block keys meanwhile so that they are the ones that survive (the dangerous case).
    const used = Number(/used_memory:(\d+)/.exec(await raw.info('memory'))![1]);
    await raw.config('SET', 'maxmemory-policy', 'allkeys-lru');
    await raw.config('SET', 'maxmemory-samples', '10'); // closer to true LRU: the untouched registry goes first
    await raw.config('SET', 'maxmemory', String(used + 2 * 1024 * 1024));
    const junk = 'x'.repeat(1024);
    let evicted = false;
    for (let round = 0; round < 2000 && !evicted; round++) {
      await podA.lookup(K); // no candidates: reads block keys only
      const p = raw.pipeline();
      for (let i = 0; i < 50; i++) p.set(`junk:${round}:${i}`, junk);
      await p.exec();
      evicted = (await Promise.all(REGISTRY.map((k) => raw.exists(k)))).some((n) => n === 0);
    }
    expect(evicted).toBe(true);
    await raw.config('SET', 'maxmemory', '0');
    await raw.config('SET', 'maxmemory-policy', 'noeviction');
    // Pod A's leading blocks that survived, under its old id (block key = prefix {0} b + 8 raw little-endian bytes).
    const blockName = (k: bigint) =>
      Buffer.concat([Buffer.from(`${PREFIX}{0}b`), Buffer.from(BigUint64Array.of(k).buffer)]);
    let survived = 0;
    while (survived < K.length && (await raw.exists(blockName(K[survived]))) === 1) survived++;
    expect(survived).toBeGreaterThanOrEqual(1); // else there would be nothing to credit wrongly

    // A new pod registers: its id is not pod A's old one, so A's surviving entries are not credited to it.
    const podB = await open();
    podB.add('10.0.0.2:8000', 'GPU', keysFrom(100, 4));
    await podB.flush();
    const reader = await open();
    const credited = await reader.lookup(K, { candidates: ['10.0.0.2:8000'] });
    expect(credited).toEqual([]); // before the fix: [{ endpoint: '10.0.0.2:8000', matchedBlocks: survived, … }]
    expect((await reader.lookup(keysFrom(100, 4), { candidates: ['10.0.0.2:8000'] }))[0].matchedBlocks).toBe(4);

    // Pod A notices (its periodic check) and reports its endpoint for a resync instead of writing on under lost ids.
    await podA.checkRegistry();
    expect(podA.registryLosses).toBe(1);
    expect(podA.takeResync()).toEqual(['10.0.0.1:8000']);
  }, 60_000);
});
