import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IndexUnavailableError, RedisIndex } from '../../src/index/index.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { keys, plain } from '../unit/index/helpers.js';

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  server?.resume();
  await server?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries fn until it resolves (the client reconnects with backoff); no assertion on how long it takes. */
async function eventually<T>(fn: () => Promise<T>, tries = 150): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= tries) throw err;
      await sleep(100);
    }
  }
}

describe('RedisIndex when Redis fails', () => {
  it('rejects with IndexUnavailableError while Redis is down, reports resync, and recovers after a restart', async () => {
    const resyncs: [string, string][] = [];
    const idx = await RedisIndex.open({
      url: server.url,
      keyPrefix: 'f1:',
      onResync: (e, why) => resyncs.push([e, why]),
    });
    idx.add('a', 'GPU', keys(1, 2));
    await idx.flush();
    expect(idx.available).toBe(true);

    await server.kill();
    try {
      await expect(idx.lookup(keys(1, 2))).rejects.toBeInstanceOf(IndexUnavailableError);
      await eventually(async () => expect(idx.available).toBe(false));
      idx.add('b', 'GPU', keys(3));
      const failed = await idx.flush().catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(IndexUnavailableError);
      expect((failed as IndexUnavailableError).code).toBe('unavailable');
      expect(idx.pendingResync()).toEqual(['b']);
      expect(idx.bufferedKeys).toBe(0); // the failed batch is not kept: memory stays bounded
      await expect(idx.reserve('c', keys(1), 1000)).rejects.toBeInstanceOf(IndexUnavailableError);
      await expect(idx.stats()).rejects.toBeInstanceOf(IndexUnavailableError);
    } finally {
      await server.restart();
    }
    expect(await eventually(() => idx.lookup(keys(1, 2)))).toEqual([]); // a fresh server: the data is gone
    // The new run id marks every endpoint this process wrote: their index state was lost.
    await eventually(async () => expect(idx.pendingResync().sort()).toEqual(['a', 'b']));
    expect(idx.takeResync().sort()).toEqual(['a', 'b']);
    expect(idx.pendingResync()).toEqual([]);
    expect(resyncs).toContainEqual(['b', 'flush failed']);
    expect(resyncs).toContainEqual(['a', 'redis data lost']);

    idx.add('a', 'GPU', keys(1, 2));
    await idx.flush();
    expect(plain(await idx.lookup(keys(1, 2)))).toEqual([['a', 2, [1, 1]]]);
    await idx.close();
  });

  it('rejects promptly while Redis is frozen (command timeout) and works again when it resumes', async () => {
    const idx = await RedisIndex.open({ url: server.url, keyPrefix: 'f2:', commandTimeoutMs: 200 });
    idx.add('a', 'GPU', keys(1));
    await idx.flush();
    server.pause();
    try {
      await expect(idx.lookup(keys(1))).rejects.toBeInstanceOf(IndexUnavailableError);
    } finally {
      server.resume();
    }
    expect(plain(await eventually(() => idx.lookup(keys(1))))).toEqual([['a', 1, [1]]]);
    await idx.close();
  });

  it('bounds the write buffer: an overflowing endpoint is dropped and reported, others are kept', async () => {
    const idx = await RedisIndex.open({ url: server.url, keyPrefix: 'f3:', maxBufferedKeys: 5 });
    idx.add('a', 'GPU', keys(1, 2));
    idx.add('b', 'GPU', keys(1, 2));
    idx.add('a', 'GPU', keys(3, 4)); // 6 > 5: a's buffered writes go
    idx.add('a', 'GPU', keys(5)); // ignored until the next flush
    expect(idx.bufferedKeys).toBe(2);
    expect(idx.pendingResync()).toEqual(['a']);
    await idx.flush();
    expect(plain(await idx.lookup(keys(1, 2)))).toEqual([['b', 2, [1, 1]]]);
    idx.clearEndpoint('a'); // the owner's resync: clear, then rebuild
    idx.add('a', 'GPU', keys(1));
    await idx.flush();
    expect(plain(await idx.lookup(keys(1, 2))).map(([e, n]) => [e, n])).toEqual([
      ['b', 2],
      ['a', 1],
    ]);
    await idx.close();
  });

  it('fails to open with IndexUnavailableError when nothing listens', async () => {
    const dead = await startRedis();
    const url = dead.url;
    await dead.stop();
    await expect(RedisIndex.open({ url, connectTimeoutMs: 500 })).rejects.toBeInstanceOf(IndexUnavailableError);
  });
});
