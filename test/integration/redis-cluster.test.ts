import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IndexUnavailableError, MemoryIndex, RedisIndex, TierRegistry } from '../../src/index/index.js';
import { Scorer } from '../../src/scoring/index.js';
import { describeIndexBehaviour } from '../support/index-behaviour.js';
import { startCluster, type RedisCluster } from '../support/redis-server.js';
import { plain } from '../unit/index/helpers.js';

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await startCluster(3);
});
afterAll(async () => {
  await cluster?.stop();
});

/** A deterministic chain of n distinct keys for chain number c (keys are random-looking, like request keys). */
function chain(c: number, n: number): BigUint64Array {
  const out = new BigUint64Array(n);
  let x = BigInt(c + 1) * 0x9e3779b97f4a7c15n;
  for (let i = 0; i < n; i++) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    out[i] = x;
  }
  return out;
}

async function keysPerMaster(prefix: string): Promise<number[]> {
  return Promise.all(
    cluster.nodes.map(async (n) => {
      const r = new Redis(n.port, '127.0.0.1');
      try {
        return (await r.keys(`${prefix}*`)).length;
      } finally {
        r.disconnect();
      }
    }),
  );
}

// The shared behaviour suite on the cluster, placement single (every key in one slot): the scripts behave the same.
let prefixes = 0;
describeIndexBehaviour('RedisIndex on a cluster, placement single', ({ tiers, clock }) =>
  RedisIndex.open({ cluster: cluster.startupNodes, placement: 'single', keyPrefix: `s${++prefixes}:`, tiers, clock }),
);

describe('RedisIndex on a 3-master Redis Cluster (placement anchor)', () => {
  it('serves lookups, Score and writes from chains spread over several masters, like the in-memory index', async () => {
    const tiers = new TierRegistry();
    const idx = await RedisIndex.open({ cluster: cluster.startupNodes, keyPrefix: 'c1:', tiers });
    expect(idx.schema.placement).toBe('anchor');
    const mem = new MemoryIndex();
    const chains = Array.from({ length: 24 }, (_, c) => chain(c, 20));
    // Ingest-shaped writes: each chain stored in two events (the second continues from the first), per endpoint.
    for (const [c, ks] of chains.entries()) {
      const endpoint = `10.0.0.${c % 4}:8000`;
      const anchor = ks[0];
      for (const part of [ks.subarray(0, 12), ks.subarray(12)]) {
        idx.add(endpoint, c % 3 === 0 ? 'CPU' : 'GPU', part, anchor);
        mem.add(endpoint, c % 3 === 0 ? 'CPU' : 'GPU', part);
      }
      if (c % 5 === 0) {
        idx.remove(endpoint, c % 3 === 0 ? 'CPU' : 'GPU', ks.subarray(15), anchor);
        mem.remove(endpoint, c % 3 === 0 ? 'CPU' : 'GPU', ks.subarray(15));
      }
    }
    await idx.flush();
    await idx.reserve('10.0.0.9:8000', chains[1].subarray(0, 6), 60_000);
    await mem.reserve('10.0.0.9:8000', chains[1].subarray(0, 6), 60_000);

    const perMaster = await keysPerMaster('c1:{t');
    expect(perMaster.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);

    const candidates = ['10.0.0.0:8000', '10.0.0.1:8000', '10.0.0.2:8000', '10.0.0.3:8000', '10.0.0.9:8000'];
    const scoreRedis = new Scorer(idx, tiers);
    const scoreMem = new Scorer(mem, mem.tiers);
    for (const ks of chains) {
      expect(plain(await idx.lookup(ks))).toEqual(plain(await mem.lookup(ks)));
      expect(await scoreRedis.score(ks, { candidates })).toEqual(await scoreMem.score(ks, { candidates }));
    }
    const [r, m] = [await idx.stats(), await mem.stats()];
    expect([r.entries, r.keys, r.speculativeEntries, r.endpoints]).toEqual([
      m.entries,
      m.keys,
      m.speculativeEntries,
      m.endpoints,
    ]);
    expect(await idx.endpointEntries('10.0.0.0:8000')).toEqual(await mem.endpointEntries('10.0.0.0:8000'));

    // clearEndpoint visits every tag the endpoint has entries in, on every master.
    idx.clearEndpoint('10.0.0.0:8000');
    mem.clearEndpoint('10.0.0.0:8000');
    await idx.flush();
    for (const ks of chains) expect(plain(await idx.lookup(ks))).toEqual(plain(await mem.lookup(ks)));
    expect(await idx.endpointEntries('10.0.0.0:8000')).toEqual({});
    expect((await idx.stats()).entries).toBe((await mem.stats()).entries);
    // A removal naming blocks of several chains (as BlockRemoved does) passes one anchor per key.
    const mixed = BigUint64Array.of(chains[1][19], chains[2][19], chains[4][18]);
    const anchors = BigUint64Array.of(chains[1][0], chains[2][0], chains[4][0]);
    idx.remove('10.0.0.1:8000', 'GPU', mixed.subarray(0, 1), anchors.subarray(0, 1));
    idx.remove('10.0.0.2:8000', 'GPU', mixed.subarray(1, 2), anchors.subarray(1, 2));
    idx.add('10.0.0.1:8000', 'DISK', mixed, anchors);
    mem.remove('10.0.0.1:8000', 'GPU', mixed.subarray(0, 1));
    mem.remove('10.0.0.2:8000', 'GPU', mixed.subarray(1, 2));
    mem.add('10.0.0.1:8000', 'DISK', mixed);
    await idx.flush();
    for (const ks of chains) expect(plain(await idx.lookup(ks))).toEqual(plain(await mem.lookup(ks)));
    expect(await idx.endpointEntries('10.0.0.1:8000')).toEqual(await mem.endpointEntries('10.0.0.1:8000'));
    const s = await idx.stats();
    expect([s.entries, s.removesOfUnknown, s.unanchoredKeys]).toEqual([(await mem.stats()).entries, 0, 0]);
    expect(() => idx.add('x', 'GPU', mixed, anchors.subarray(1))).toThrow(RangeError);
    await idx.close();
  });

  it('follows a slot moved to another master (MOVED); while it migrates, calls reject as unavailable', async () => {
    const idx = await RedisIndex.open({ cluster: cluster.startupNodes, keyPrefix: 'c3:' });
    const ks = chain(7, 4);
    idx.add('e', 'GPU', ks, ks[0]);
    await idx.flush();
    const nodes = cluster.nodes.map((n) => new Redis(n.port, '127.0.0.1'));
    try {
      const slot = Number(await nodes[0].call('cluster', 'keyslot', idx.schema.counters(idx.schema.tagOf(ks[0]))));
      const ids = await Promise.all(nodes.map((n) => n.call('cluster', 'myid') as Promise<string>));
      const counts = await Promise.all(
        nodes.map(async (n) => Number(await n.call('cluster', 'countkeysinslot', slot))),
      );
      const from = counts.findIndex((c) => c > 0);
      const to = (from + 1) % nodes.length;
      await nodes[to].call('cluster', 'setslot', slot, 'importing', ids[from]);
      await nodes[from].call('cluster', 'setslot', slot, 'migrating', ids[to]);
      const slotKeys = (await nodes[from].callBuffer('cluster', 'getkeysinslot', slot, 100)) as Buffer[];
      const blocks = slotKeys.filter((k) => k.includes('}b'));
      const migrate = (keys: Buffer[]) =>
        nodes[from].call('migrate', '127.0.0.1', cluster.nodes[to].port, '', 0, 5000, 'KEYS', ...keys);
      await migrate(blocks.slice(0, 2)); // half-way through resharding the slot

      await expect(idx.lookup(ks)).rejects.toBeInstanceOf(IndexUnavailableError);
      idx.add('e', 'CPU', ks, ks[0]);
      await expect(idx.flush()).rejects.toBeInstanceOf(IndexUnavailableError);
      expect(idx.takeResync()).toEqual(['e']);

      const rest = (await nodes[from].callBuffer('cluster', 'getkeysinslot', slot, 100)) as Buffer[];
      await migrate(rest);
      for (const n of nodes) await n.call('cluster', 'setslot', slot, 'node', ids[to]);

      // The client follows the MOVED redirection to the slot's new master.
      idx.clearEndpoint('e'); // the resync the failed flush asked for
      idx.add('e', 'DISK', ks, ks[0]);
      await idx.flush();
      expect(plain(await idx.lookup(ks))).toEqual([['e', 4, [8, 8, 8, 8]]]);
      expect(Number(await nodes[to].call('cluster', 'countkeysinslot', slot))).toBeGreaterThan(0);
      expect(Number(await nodes[from].call('cluster', 'countkeysinslot', slot))).toBe(0);
    } finally {
      nodes.forEach((n) => n.disconnect());
      await idx.close();
    }
  });

  it('places every key of one chain in one slot, whatever the write batches', async () => {
    const idx = await RedisIndex.open({ cluster: cluster.startupNodes, keyPrefix: 'c2:' });
    // Leases share one slot ({lease}): one script for any number of endpoints, on a cluster too.
    const leases = idx.leases('replica-1', 60_000);
    expect((await leases.acquire(['x', 'y', 'z'])).map((r) => r.status)).toEqual(['acquired', 'acquired', 'acquired']);
    expect(await leases.release()).toBe(3);
    const ks = chain(99, 8);
    const tag = idx.schema.tagOf(ks[0]);
    expect(idx.schema.tagOfKeys(ks)).toBe(tag);
    idx.add('e', 'GPU', ks.subarray(0, 3), ks[0]);
    idx.add('e', 'GPU', ks.subarray(3), ks[0]);
    await idx.flush();
    const perMaster = await keysPerMaster(`c2:{${tag}}b`);
    expect(perMaster.sort()).toEqual([0, 0, 8]);
    await idx.close();
  });

  // Last: it kills a master of the shared cluster.
  it('rejects with IndexUnavailableError for the slots of a dead master, and only those at first', async () => {
    const idx = await RedisIndex.open({ cluster: cluster.startupNodes, keyPrefix: 'c4:', commandTimeoutMs: 300 });
    const chains = Array.from({ length: 12 }, (_, c) => chain(500 + c, 2));
    for (const ks of chains) idx.add('e', 'GPU', ks, ks[0]);
    await idx.flush();
    await cluster.nodes[0].kill();
    // Slots of the live masters answer until the cluster declares the failure (then CLUSTERDOWN: all reject).
    const outcomes = await Promise.all(
      chains.map((ks) =>
        idx.lookup(ks).then(
          (r) => (plain(r)[0]?.[1] === 2 ? 'match' : 'wrong'),
          (e: unknown) => (e instanceof IndexUnavailableError ? 'unavailable' : `other: ${String(e)}`),
        ),
      ),
    );
    expect(outcomes.filter((o) => o !== 'match' && o !== 'unavailable')).toEqual([]);
    expect(outcomes).toContain('unavailable');
    await idx.close();
  });
});
