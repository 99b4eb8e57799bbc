import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisIndex } from '../../src/index/index.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(async () => {
  await server?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('EndpointLeases (ownership of endpoints among replicas)', () => {
  it('acquires, renews, refuses others, releases, and lets another replica take over an expired lease', async () => {
    const [r1, r2] = await Promise.all([
      RedisIndex.open({ url: server.url, keyPrefix: 'l1:' }),
      RedisIndex.open({ url: server.url, keyPrefix: 'l1:' }),
    ]);
    const a = r1.leases('replica-a', 60_000);
    const b = r2.leases('replica-b', 300);

    expect(await a.acquire(['e1', 'e2'])).toEqual([
      { endpoint: 'e1', status: 'acquired', owner: 'replica-a', epoch: 1 },
      { endpoint: 'e2', status: 'acquired', owner: 'replica-a', epoch: 1 },
    ]);
    expect(await b.acquire(['e1', 'e3'])).toEqual([
      { endpoint: 'e1', status: 'held-by-other', owner: 'replica-a', epoch: 1 },
      { endpoint: 'e3', status: 'acquired', owner: 'replica-b', epoch: 1 },
    ]);
    expect((await a.acquire(['e1']))[0].status).toBe('renewed');
    expect(await a.renew()).toEqual({ lost: [], lapsed: [] });
    expect(a.heldEndpoints().sort()).toEqual(['e1', 'e2']);

    // Graceful shutdown: released leases are free at once.
    expect(await a.release(['e2'])).toBe(1);
    expect(await b.acquire(['e2'])).toEqual([{ endpoint: 'e2', status: 'acquired', owner: 'replica-b', epoch: 2 }]);
    expect(await a.release(['e2'])).toBe(0); // not a's any more

    // b stops renewing (a crashed replica): once its short lease expires, a takes e3 over.
    let taken;
    for (let i = 0; i < 100 && taken?.status !== 'acquired'; i++) {
      [taken] = await a.acquire(['e3']);
      if (taken.status !== 'acquired') await sleep(50);
    }
    expect(taken).toEqual({ endpoint: 'e3', status: 'acquired', owner: 'replica-a', epoch: 2 });
    for (let i = 0; i < 100 && server.cli('exists', 'l1:{lease}l:e2').trim() !== '0'; i++) await sleep(50);
    // b's e2 lapsed too but nobody took it: b gets it back, flagged as lapsed (a possible takeover to resync).
    expect(await b.renew()).toEqual({ lost: ['e3'], lapsed: ['e2'] });
    expect(b.heldEndpoints()).not.toContain('e3');

    expect(await a.release()).toBe(2);
    expect(a.heldEndpoints()).toEqual([]);
    await Promise.all([r1.close(), r2.close()]);
  });

  it('rejects bad lease settings', async () => {
    const idx = await RedisIndex.open({ url: server.url, keyPrefix: 'l2:' });
    expect(() => idx.leases('x', 0)).toThrow(RangeError);
    expect(() => idx.leases('', 1000)).toThrow(RangeError);
    await idx.close();
  });
});
