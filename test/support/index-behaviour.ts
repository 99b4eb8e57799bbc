/**
 * The behaviour every Index backend shares, registered for a backend by a factory (memory and Redis run it). Only the
 * async Index surface is used; writes are followed by flush() (a no-op in memory, the round trip in Redis). Backend
 * specifics (eviction at maxEntries, constructor options, *Sync methods) stay in each backend's own tests.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { SPECULATIVE_BIT, TierRegistry, type Index, type IndexStats } from '../../src/index/index.js';
import { keys, plain } from '../unit/index/helpers.js';

export interface BehaviourIndex extends Index {
  readonly tiers: TierRegistry;
  stats(): Promise<IndexStats & { removesOfUnknown: number; expiredSpeculative: number }>;
  sweepExpired(now?: number): number | Promise<number>;
  entriesOf(endpoint: string): number | Promise<number>;
}

export interface BehaviourOptions {
  tiers?: TierRegistry;
  clock?: () => number;
}

export type IndexFactory = (options: BehaviourOptions) => BehaviourIndex | Promise<BehaviourIndex>;

const GPU = 1;
const CPU = 2;
const DISK = 8;
const SPEC = (GPU | SPECULATIVE_BIT) >>> 0;

/** Stats minus bytes (which a shared server's allocator may move between two calls). */
async function counts(idx: BehaviourIndex) {
  const { bytes: _bytes, ...rest } = await idx.stats();
  return rest;
}

export function describeIndexBehaviour(backend: string, factory: IndexFactory): void {
  const open: BehaviourIndex[] = [];
  const make = async (options: BehaviourOptions = {}) => {
    const idx = await factory(options);
    open.push(idx);
    return idx;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((i) => i.close()));
  });

  describe(`${backend}: add / remove / lookup`, () => {
    it('finds a chain added for one endpoint, GPU bit per block', async () => {
      const idx = await make();
      idx.add('a', 'GPU', keys(10, 11, 12));
      await idx.flush();
      expect(plain(await idx.lookup(keys(10, 11, 12)))).toEqual([['a', 3, [GPU, GPU, GPU]]]);
      expect(plain(await idx.lookup(keys(10, 11, 12, 13)))).toEqual([['a', 3, [GPU, GPU, GPU]]]);
      expect(await idx.lookup(keys(99, 11, 12))).toEqual([]);
      expect(plain(await idx.lookup(keys(11, 12)))).toEqual([['a', 2, [GPU, GPU]]]); // keys, not chains
      expect(await idx.lookup(keys())).toEqual([]);
      const s = await idx.stats();
      expect([s.entries, s.keys, s.endpoints, s.speculativeEntries, s.evictions]).toEqual([3, 3, 1, 0, 0]);
    });

    it('counts references: an entry disappears only when removes balance adds', async () => {
      const idx = await make();
      idx.add('a', 'GPU', keys(1, 2));
      idx.add('a', 'GPU', keys(1));
      idx.remove('a', 'GPU', keys(1, 2));
      await idx.flush();
      expect(plain(await idx.lookup(keys(1, 2)))).toEqual([['a', 1, [GPU]]]);
      expect((await idx.stats()).entries).toBe(1);
      idx.remove('a', 'GPU', keys(1));
      await idx.flush();
      expect(await idx.lookup(keys(1))).toEqual([]);
      const s = await idx.stats();
      expect([s.entries, s.keys, s.endpoints, s.removesOfUnknown]).toEqual([0, 0, 0, 0]);
    });

    it('ignores and counts removes of entries it does not hold', async () => {
      const idx = await make();
      idx.add('a', 'GPU', keys(1));
      await idx.flush();
      idx.remove('a', 'GPU', keys(2, 3)); // missing keys
      idx.remove('a', 'CPU', keys(1)); // held, but on another tier
      idx.remove('b', 'GPU', keys(1)); // unknown endpoint
      idx.remove('a', 'NO_SUCH_TIER', keys(1, 1)); // unknown tier
      await idx.flush();
      expect((await idx.stats()).removesOfUnknown).toBe(6);
      expect(plain(await idx.lookup(keys(1)))).toEqual([['a', 1, [GPU]]]);
      expect(idx.tiers.find('NO_SUCH_TIER')).toBeUndefined();
    });

    it('reports one bit per tier held, with tier names normalised and new tiers interned', async () => {
      const idx = await make();
      idx.add('a', 'GPU', keys(1, 2));
      idx.add('a', 'cpu', keys(2, 3));
      idx.add('a', 'Disk', keys(3));
      idx.add('a', 'NVME', keys(1));
      await idx.flush();
      const nvme = 1 << idx.tiers.find('nvme')!;
      expect(nvme).toBe(256);
      expect(plain(await idx.lookup(keys(1, 2, 3)))).toEqual([['a', 3, [GPU | nvme, GPU | CPU, CPU | DISK]]]);
      expect(await idx.endpointEntries('a')).toEqual({ GPU: 2, CPU: 2, DISK: 1, NVME: 1 });
      expect(await idx.stats()).toMatchObject({ entries: 6, keys: 3 });
    });

    it('shares a TierRegistry passed in', async () => {
      const tiers = new TierRegistry();
      const idx = await make({ tiers });
      idx.add('a', 'HBM', keys(1));
      await idx.flush();
      expect(tiers.find('HBM')).toBe(8);
    });

    it('matches only the consecutive prefix from block 0', async () => {
      const idx = await make();
      idx.add('a', 'GPU', keys(100, 101, 103));
      idx.add('b', 'CPU', keys(100, 101, 102, 103));
      await idx.flush();
      expect(plain(await idx.lookup(keys(100, 101, 102, 103)))).toEqual([
        ['b', 4, [CPU, CPU, CPU, CPU]],
        ['a', 2, [GPU, GPU]],
      ]);
    });

    it('considers only candidates, ignoring unknown names, in candidate order on ties', async () => {
      const idx = await make();
      idx.add('a', 'GPU', keys(1, 2));
      idx.add('b', 'GPU', keys(1, 2, 3));
      idx.add('c', 'GPU', keys(1, 2));
      idx.add('d', 'GPU', keys(2, 3));
      await idx.flush();
      const chain = keys(1, 2, 3);
      expect(plain(await idx.lookup(chain, { candidates: ['nope', 'c', 'a', 'd', 'c'] }))).toEqual([
        ['c', 2, [GPU, GPU]],
        ['a', 2, [GPU, GPU]],
      ]);
      expect(await idx.lookup(chain, { candidates: ['nope', 'd'] })).toEqual([]);
      expect(await idx.lookup(chain, { candidates: [] })).toEqual([]);
      // Without candidates: every endpoint holding block 0, longest first, ties by name.
      expect(plain(await idx.lookup(chain)).map(([e, n]) => [e, n])).toEqual([
        ['b', 3],
        ['a', 2],
        ['c', 2],
      ]);
    });

    it('walks at most maxBlocks blocks', async () => {
      const idx = await make();
      idx.add('a', 'GPU', keys(1, 2, 3, 4));
      await idx.flush();
      expect(plain(await idx.lookup(keys(1, 2, 3, 4), { maxBlocks: 2 }))).toEqual([['a', 2, [GPU, GPU]]]);
      expect(await idx.lookup(keys(1, 2, 3, 4), { maxBlocks: 0 })).toEqual([]);
      expect((await idx.lookup(keys(1, 2, 3, 4), { maxBlocks: 10 }))[0].matchedBlocks).toBe(4);
    });

    it('reads the keys of a subarray view at its offset', async () => {
      const idx = await make();
      const all = keys(7, 8, 9, 10);
      idx.add('a', 'GPU', all.subarray(1, 3));
      await idx.flush();
      expect(plain(await idx.lookup(all.subarray(1)))).toEqual([['a', 2, [GPU, GPU]]]);
      expect(await idx.lookup(all)).toEqual([]);
    });

    it('keeps keys ≥ 2^63 and keys that differ in only one 32-bit half apart', async () => {
      const idx = await make();
      const big = [2n ** 64n - 1n, 2n ** 63n, 2n ** 63n + 1n, 0n, 1n << 32n, 1n, (1n << 32n) | 1n];
      big.forEach((k, i) => idx.add(`e${i}`, 'GPU', keys(k)));
      await idx.flush();
      for (const [i, k] of big.entries()) expect(plain(await idx.lookup(keys(k)))).toEqual([[`e${i}`, 1, [GPU]]]);
      expect((await idx.stats()).keys).toBe(7);
      idx.remove('e0', 'GPU', keys(2n ** 64n - 1n));
      await idx.flush();
      expect(await idx.lookup(keys(2n ** 64n - 1n))).toEqual([]);
      expect(plain(await idx.lookup(keys(2n ** 63n)))).toEqual([['e1', 1, [GPU]]]);
    });

    it('does not depend on the caller keeping its key array unchanged after add', async () => {
      const idx = await make();
      const scratch = keys(1, 2);
      idx.add('a', 'GPU', scratch);
      scratch.fill(9n);
      await idx.flush();
      expect(plain(await idx.lookup(keys(1, 2)))).toEqual([['a', 2, [GPU, GPU]]]);
    });
  });

  describe(`${backend}: clearEndpoint and per-endpoint counts`, () => {
    it('drops every entry of one endpoint, all tiers and speculative, leaving others intact', async () => {
      const idx = await make();
      idx.add('a', 'GPU', keys(1, 2, 3));
      idx.add('a', 'CPU', keys(1, 2));
      await idx.reserve('a', keys(4), 1000);
      idx.add('b', 'GPU', keys(1, 2));
      await idx.flush();
      idx.clearEndpoint('a');
      await idx.flush();
      expect(plain(await idx.lookup(keys(1, 2, 3, 4)))).toEqual([['b', 2, [GPU, GPU]]]);
      expect(await idx.entriesOf('a')).toBe(0);
      expect(await idx.entriesOf('b')).toBe(2);
      expect(await idx.endpointEntries('a')).toEqual({});
      expect(await idx.stats()).toMatchObject({ entries: 2, keys: 2, endpoints: 1, speculativeEntries: 0 });
      idx.clearEndpoint('never-seen');
      idx.add('a', 'GPU', keys(1));
      await idx.flush();
      expect(plain(await idx.lookup(keys(1, 2)))).toEqual([
        ['b', 2, [GPU, GPU]],
        ['a', 1, [GPU]],
      ]);
    });

    it('counts entries per tier name, speculative ones under GPU', async () => {
      const idx = await make();
      idx.add('a', 'GPU', keys(1, 2));
      idx.add('a', 'CPU', keys(2));
      await idx.flush();
      await idx.reserve('a', keys(3, 4), 1000);
      expect(await idx.endpointEntries('a')).toEqual({ GPU: 4, CPU: 1 });
      expect(await idx.endpointEntries('zzz')).toEqual({});
      expect(await idx.entriesOf('a')).toBe(5);
    });
  });

  describe(`${backend}: speculative entries`, () => {
    it('reserve → visible with SPECULATIVE_BIT → confirming add clears it → release leaves confirmed', async () => {
      const now = 1_000;
      const idx = await make({ clock: () => now });
      idx.add('a', 'GPU', keys(1));
      await idx.flush();
      await idx.reserve('a', keys(1, 2, 3), 2000); // key 1 is already held: untouched
      expect(plain(await idx.lookup(keys(1, 2, 3)))).toEqual([['a', 3, [GPU, SPEC, SPEC]]]);
      expect(await idx.stats()).toMatchObject({ entries: 3, speculativeEntries: 2 });

      idx.add('a', 'CPU', keys(2)); // confirming store on any tier replaces the speculative entry
      await idx.flush();
      expect(plain(await idx.lookup(keys(1, 2, 3)))).toEqual([['a', 3, [GPU, CPU, SPEC]]]);
      expect(await idx.stats()).toMatchObject({ entries: 3, speculativeEntries: 1 });

      expect(await idx.release('a', keys(1, 2, 3))).toBe(1);
      expect(plain(await idx.lookup(keys(1, 2, 3)))).toEqual([['a', 2, [GPU, CPU]]]);
      expect(await idx.release('a', keys(1, 2, 3))).toBe(0);
      expect(await idx.release('other', keys(1))).toBe(0);
      idx.remove('a', 'CPU', keys(2));
      await idx.flush();
      expect(await idx.stats()).toMatchObject({ entries: 1, speculativeEntries: 0, removesOfUnknown: 0 });
    });

    it('does not let remove() touch a speculative entry', async () => {
      const idx = await make();
      await idx.reserve('a', keys(5), 60_000);
      idx.remove('a', 'GPU', keys(5));
      await idx.flush();
      expect(plain(await idx.lookup(keys(5)))).toEqual([['a', 1, [SPEC]]]);
      expect((await idx.stats()).removesOfUnknown).toBe(1);
    });

    it('scores speculative entries for the reserving endpoint only', async () => {
      const idx = await make();
      idx.add('b', 'GPU', keys(1, 2));
      await idx.flush();
      await idx.reserve('a', keys(1, 2), 60_000);
      expect(plain(await idx.lookup(keys(1, 2), { candidates: ['a', 'b'] }))).toEqual([
        ['a', 2, [SPEC, SPEC]],
        ['b', 2, [GPU, GPU]],
      ]);
    });

    it('expires by the injected clock, and by options.now at read time', async () => {
      let now = 1_000;
      const idx = await make({ clock: () => now });
      await idx.reserve('a', keys(1, 2), 100); // expires at 1100
      now = 1_099;
      expect((await idx.lookup(keys(1, 2)))[0].matchedBlocks).toBe(2);
      expect(await idx.lookup(keys(1, 2), { now: 1_100 })).toEqual([]);
      now = 1_100;
      expect(await idx.lookup(keys(1, 2))).toEqual([]);
      expect((await idx.lookup(keys(1, 2), { now: 1_050 }))[0].matchedBlocks).toBe(2); // not swept yet
      expect(await idx.release('a', keys(1))).toBe(0); // already expired: reclaimed, not counted
      expect(await idx.sweepExpired()).toBe(1);
      expect(await idx.lookup(keys(2), { now: 1_050 })).toEqual([]);
      expect(await idx.stats()).toMatchObject({ entries: 0, keys: 0, speculativeEntries: 0, expiredSpeculative: 1 });
    });

    it('extends the expiry of an existing speculative entry', async () => {
      let now = 0;
      const idx = await make({ clock: () => now });
      await idx.reserve('a', keys(1), 100); // 100
      now = 50;
      await idx.reserve('a', keys(1), 100); // 150
      await idx.reserve('a', keys(1), 10); // stays 150 (never shortened)
      now = 120;
      expect(await idx.sweepExpired()).toBe(0);
      expect((await idx.lookup(keys(1)))[0].tierMasks[0]).toBe(SPEC);
      expect(await idx.sweepExpired(149)).toBe(0);
      expect(await idx.sweepExpired(150)).toBe(1);
      expect((await idx.stats()).speculativeEntries).toBe(0);
    });

    it('reclaims expired entries from the write path and from stats', async () => {
      let now = 0;
      const idx = await make({ clock: () => now });
      await idx.reserve('a', keys(1, 2, 3), 10);
      now = 10;
      idx.add('b', 'GPU', keys(9)); // sweeps due entries as a side effect
      await idx.flush();
      expect(await idx.stats()).toMatchObject({ entries: 1, keys: 1, speculativeEntries: 0, expiredSpeculative: 3 });
      await idx.reserve('a', keys(1), 10);
      now = 25;
      expect(await idx.entriesOf('a')).toBe(0);
    });

    it('re-reserving after expiry creates a fresh entry', async () => {
      let now = 0;
      const idx = await make({ clock: () => now });
      await idx.reserve('a', keys(1), 10);
      now = 10;
      await idx.reserve('a', keys(1), 10); // the expired entry is swept or renewed: expires at 20 either way
      now = 19;
      expect((await idx.lookup(keys(1)))[0].tierMasks[0]).toBe(SPEC);
      now = 20;
      expect(await idx.lookup(keys(1))).toEqual([]);
    });
  });

  describe(`${backend}: validation at the edge`, () => {
    const bad: [string, (idx: BehaviourIndex) => unknown, ErrorConstructor][] = [
      ['keys not a BigUint64Array', (i) => i.add('a', 'GPU', [1n] as unknown as BigUint64Array), TypeError],
      ['Uint32Array keys', (i) => i.add('a', 'GPU', new Uint32Array(2) as unknown as BigUint64Array), TypeError],
      ['empty endpoint', (i) => i.add('', 'GPU', keys(1)), TypeError],
      ['non-string endpoint', (i) => i.remove(7 as unknown as string, 'GPU', keys(1)), TypeError],
      ['non-string tier', (i) => i.add('a', null as unknown as string, keys(1)), TypeError],
      ['zero ttl', (i) => i.reserve('a', keys(1), 0), RangeError],
      ['negative ttl', (i) => i.reserve('a', keys(1), -5), RangeError],
      ['NaN ttl', (i) => i.reserve('a', keys(1), NaN), RangeError],
      ['infinite ttl', (i) => i.reserve('a', keys(1), Infinity), RangeError],
      ['negative maxBlocks', (i) => i.lookup(keys(1), { maxBlocks: -1 }), RangeError],
      ['fractional maxBlocks', (i) => i.lookup(keys(1), { maxBlocks: 1.5 }), RangeError],
      ['NaN now', (i) => i.lookup(keys(1), { now: NaN }), RangeError],
      ['candidates not strings', (i) => i.lookup(keys(1), { candidates: [1 as unknown as string] }), TypeError],
      ['release with bad keys', (i) => i.release('a', 'x' as unknown as BigUint64Array), TypeError],
      ['clear with empty name', (i) => i.clearEndpoint(''), TypeError],
    ];
    for (const [what, call, type] of bad) {
      it(`rejects ${what} and changes nothing`, async () => {
        const idx = await make();
        idx.add('a', 'GPU', keys(1));
        await idx.flush();
        const before = await counts(idx);
        // Synchronous writers throw, async methods reject: either way the caller sees the error type.
        await expect(Promise.resolve().then(() => call(idx))).rejects.toThrow(type);
        await idx.flush();
        expect(await counts(idx)).toEqual(before);
        expect(plain(await idx.lookup(keys(1)))).toEqual([['a', 1, [GPU]]]);
      });
    }
  });

  describe(`${backend}: async surface and lifecycle`, () => {
    it('serves the whole Index interface and refuses calls after close', async () => {
      const now = 0;
      const idx = await make({ clock: () => now });
      idx.add('a', 'GPU', keys(1));
      await idx.reserve('b', keys(1, 2), 50);
      await idx.flush();
      expect(plain(await idx.lookup(keys(1, 2)))).toEqual([
        ['b', 2, [SPEC, SPEC]],
        ['a', 1, [GPU]],
      ]);
      expect(await idx.release('b', keys(2))).toBe(1);
      const s = await idx.stats();
      expect(s).toMatchObject({ entries: 2, keys: 1, speculativeEntries: 1, endpoints: 2, evictions: 0 });
      expect(s.bytes).toBeGreaterThan(0);
      await idx.close();
      await expect(idx.lookup(keys(1))).rejects.toThrow(/closed/);
      expect(() => idx.add('a', 'GPU', keys(1))).toThrow(/closed/);
      await idx.close();
    });
  });
}
