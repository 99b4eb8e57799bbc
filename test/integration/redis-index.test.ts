import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisIndex, type RedisIndexOptions } from '../../src/index/index.js';
import { describeIndexBehaviour } from '../support/index-behaviour.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { keys, plain } from '../unit/index/helpers.js';

let server: RedisServer;
let prefixes = 0;
/** A fresh key prefix per index: tests share one server without seeing each other's keys. */
const fresh = () => `t${++prefixes}:`;

beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

const open = (options: Partial<RedisIndexOptions> = {}) =>
  RedisIndex.open({ url: server.url, keyPrefix: fresh(), ...options });

// The in-memory index's behaviour suite, unchanged, against a real redis-server.
describeIndexBehaviour('RedisIndex', ({ tiers, clock }) => open({ tiers, clock }));

describe('RedisIndex specifics', () => {
  it('lets replicas sharing a prefix see each other’s entries, speculative ones included', async () => {
    const keyPrefix = fresh();
    const a = await open({ keyPrefix });
    const b = await open({ keyPrefix });
    a.add('e1', 'GPU', keys(1, 2, 3));
    a.add('e1', 'RAM9', keys(1)); // a tier b has never seen: ids are shared through Redis
    await a.flush();
    await b.reserve('e2', keys(1, 2), 60_000);
    const spec = 0x80000001;
    const ram9 = 1 << a.tiers.find('RAM9')!;
    expect(plain(await a.lookup(keys(1, 2, 3)))).toEqual([
      ['e1', 3, [1 | ram9, 1, 1]],
      ['e2', 2, [spec, spec]],
    ]);
    const fromB = plain(await b.lookup(keys(1, 2, 3), { candidates: ['e1', 'e2'] }));
    expect(fromB).toEqual([
      ['e1', 3, [1 | (1 << b.tiers.find('RAM9')!), 1, 1]],
      ['e2', 2, [spec, spec]],
    ]);
    expect(await b.endpointEntries('e1')).toEqual({ GPU: 3, RAM9: 1 });
    await Promise.all([a.close(), b.close()]);
  });

  it('keeps fractional expiry times exact, like the in-memory index', async () => {
    const now = 1_763_700_000_000.25;
    const idx = await open({ clock: () => now });
    await idx.reserve('a', keys(1), 0.5);
    expect((await idx.lookup(keys(1), { now: now + 0.49 }))[0].matchedBlocks).toBe(1);
    expect(await idx.lookup(keys(1), { now: now + 0.5 })).toEqual([]);
    await idx.close();
  });

  it('walks blocks for thousands of matching endpoints (fields fetched in chunks inside the script)', async () => {
    const idx = await open();
    const names = Array.from({ length: 4100 }, (_, i) => `10.1.${i >> 8}.${i & 255}:8000`);
    names.forEach((n, i) => idx.add(n, 'GPU', i % 2 === 0 ? keys(1, 2) : keys(1)));
    await idx.flush();
    const all = await idx.lookup(keys(1, 2));
    expect(all.length).toBe(4100);
    expect(all.filter((m) => m.matchedBlocks === 2).length).toBe(2050);
    const some = await idx.lookup(keys(1, 2), { candidates: [...names].reverse() });
    expect(some.length).toBe(4100);
    expect(some[0].endpoint).toBe(names[4098]); // longest first, then candidate order
    await idx.close();
  });

  it('keeps refcounts above one per tier and drops the entry only when removes balance adds', async () => {
    const idx = await open();
    for (let i = 0; i < 3; i++) idx.add('a', 'CPU', keys(1));
    idx.add('a', 'GPU', keys(1));
    idx.remove('a', 'CPU', keys(1));
    idx.remove('a', 'CPU', keys(1));
    await idx.flush();
    expect(plain(await idx.lookup(keys(1)))).toEqual([['a', 1, [3]]]);
    idx.remove('a', 'CPU', keys(1));
    await idx.flush();
    expect(plain(await idx.lookup(keys(1)))).toEqual([['a', 1, [1]]]);
    await idx.close();
  });

  it('applies a whole batch in one script call per flush (placement single)', async () => {
    const idx = await open();
    idx.add('warm', 'GPU', keys(1)); // registers the endpoint (first sight costs one registry call)
    await idx.flush();
    const before = commandCalls(server);
    for (let e = 0; e < 3; e++) idx.add(`warm`, 'GPU', keys(10 + e, 20 + e));
    idx.remove('warm', 'GPU', keys(1));
    await idx.flush();
    await idx.lookup(keys(10, 20), { candidates: ['warm'] });
    const after = commandCalls(server);
    expect(after - before).toBe(2 + 1); // evalsha ×2 (flush, lookup) + the INFO of this measurement itself
    await idx.close();
  });

  it('splits a large flush into several scripts sent together, applied in order', async () => {
    const idx = await open({ maxKeysPerScript: 4 });
    idx.add('warm', 'GPU', keys(99));
    await idx.flush();
    const before = commandCalls(server);
    idx.add('a', 'GPU', keys(1, 2, 3, 4, 5, 6));
    idx.remove('a', 'GPU', keys(6));
    idx.clearEndpoint('warm');
    idx.add('a', 'CPU', keys(1, 2));
    await idx.flush();
    const after = commandCalls(server);
    expect(after - before).toBe(3 + 1 + 1); // 3 APPLYs (4 + 4 + 2 keys), PREPARE (first sight of 'a'), INFO
    expect(plain(await idx.lookup(keys(1, 2, 3, 4, 5, 6)))).toEqual([['a', 5, [3, 3, 1, 1, 1]]]);
    expect(await idx.lookup(keys(99))).toEqual([]);
    await idx.close();
  });

  it('expires block keys with entryTtlMs and rejects bad options', async () => {
    const idx = await open({ entryTtlMs: 60_000 });
    idx.add('a', 'GPU', keys(5));
    await idx.flush();
    const raw = new Redis(server.url);
    const ttl = await raw.pttl(idx.schema.block('0', new Uint8Array(keys(5).buffer)));
    raw.disconnect();
    expect(ttl).toBeGreaterThan(0);
    await idx.close();
    await expect(open({ keyPrefix: 'bad{tag}' })).rejects.toThrow(RangeError);
    await expect(open({ entryTtlMs: -1 })).rejects.toThrow(RangeError);
    await expect(open({ placement: 'sharded' as 'single' })).rejects.toThrow(RangeError);
    await expect(open({ maxKeysPerScript: 0 })).rejects.toThrow(RangeError);
    await expect(RedisIndex.open({})).rejects.toThrow(/url or cluster/);
  });
});

/** Script and INFO calls the server has served so far (INFO commandstats). */
function commandCalls(srv: RedisServer): number {
  const out = srv.cli('info', 'commandstats');
  let n = 0;
  for (const m of out.matchAll(/cmdstat_(\w+):calls=(\d+)/g))
    if (['evalsha', 'eval', 'info'].includes(m[1])) n += Number(m[2]);
  return n;
}
