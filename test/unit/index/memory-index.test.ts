import { describe, expect, it } from 'vitest';
import { MemoryIndex, SPECULATIVE_BIT, TierRegistry } from '../../../src/index/index.js';
import { keys, plain } from './helpers.js';

const GPU = 1;
const CPU = 2;
const DISK = 8;
const SPEC = (GPU | SPECULATIVE_BIT) >>> 0;

describe('MemoryIndex add / remove / lookup', () => {
  it('finds a chain added for one endpoint, GPU bit per block', () => {
    const idx = new MemoryIndex();
    idx.add('a', 'GPU', keys(10, 11, 12));
    expect(plain(idx.lookupSync(keys(10, 11, 12)))).toEqual([['a', 3, [GPU, GPU, GPU]]]);
    expect(plain(idx.lookupSync(keys(10, 11, 12, 13)))).toEqual([['a', 3, [GPU, GPU, GPU]]]);
    expect(idx.lookupSync(keys(99, 11, 12))).toEqual([]);
    expect(plain(idx.lookupSync(keys(11, 12)))).toEqual([['a', 2, [GPU, GPU]]]); // keys, not chains
    expect(idx.lookupSync(keys())).toEqual([]);
    const s = idx.statsSync();
    expect([s.entries, s.keys, s.endpoints, s.speculativeEntries, s.evictions]).toEqual([3, 3, 1, 0, 0]);
  });

  it('counts references: an entry disappears only when removes balance adds', () => {
    const idx = new MemoryIndex();
    idx.add('a', 'GPU', keys(1, 2));
    idx.add('a', 'GPU', keys(1));
    idx.remove('a', 'GPU', keys(1, 2));
    expect(plain(idx.lookupSync(keys(1, 2)))).toEqual([['a', 1, [GPU]]]);
    expect(idx.statsSync().entries).toBe(1);
    idx.remove('a', 'GPU', keys(1));
    expect(idx.lookupSync(keys(1))).toEqual([]);
    const s = idx.statsSync();
    expect([s.entries, s.keys, s.endpoints, s.removesOfUnknown]).toEqual([0, 0, 0, 0]);
  });

  it('ignores and counts removes of entries it does not hold', () => {
    const idx = new MemoryIndex();
    idx.add('a', 'GPU', keys(1));
    idx.remove('a', 'GPU', keys(2, 3)); // missing keys
    idx.remove('a', 'CPU', keys(1)); // held, but on another tier
    idx.remove('b', 'GPU', keys(1)); // unknown endpoint
    idx.remove('a', 'NO_SUCH_TIER', keys(1, 1)); // unknown tier
    expect(idx.statsSync().removesOfUnknown).toBe(6);
    expect(plain(idx.lookupSync(keys(1)))).toEqual([['a', 1, [GPU]]]);
    expect(idx.tiers.find('NO_SUCH_TIER')).toBeUndefined();
  });

  it('reports one bit per tier held, with tier names normalised and new tiers interned', () => {
    const idx = new MemoryIndex();
    idx.add('a', 'GPU', keys(1, 2));
    idx.add('a', 'cpu', keys(2, 3));
    idx.add('a', 'Disk', keys(3));
    idx.add('a', 'NVME', keys(1));
    const nvme = 1 << idx.tiers.find('nvme')!;
    expect(nvme).toBe(256);
    expect(plain(idx.lookupSync(keys(1, 2, 3)))).toEqual([['a', 3, [GPU | nvme, GPU | CPU, CPU | DISK]]]);
    expect(idx.endpointEntriesSync('a')).toEqual({ GPU: 2, CPU: 2, DISK: 1, NVME: 1 });
    expect(idx.statsSync()).toMatchObject({ entries: 6, keys: 3 });
  });

  it('shares a TierRegistry passed in', () => {
    const tiers = new TierRegistry();
    const idx = new MemoryIndex({ tiers });
    idx.add('a', 'HBM', keys(1));
    expect(tiers.find('HBM')).toBe(8);
  });

  it('matches only the consecutive prefix from block 0', () => {
    const idx = new MemoryIndex();
    idx.add('a', 'GPU', keys(100, 101, 103));
    idx.add('b', 'CPU', keys(100, 101, 102, 103));
    expect(plain(idx.lookupSync(keys(100, 101, 102, 103)))).toEqual([
      ['b', 4, [CPU, CPU, CPU, CPU]],
      ['a', 2, [GPU, GPU]],
    ]);
  });

  it('considers only candidates, ignoring unknown names, in candidate order on ties', () => {
    const idx = new MemoryIndex();
    idx.add('a', 'GPU', keys(1, 2));
    idx.add('b', 'GPU', keys(1, 2, 3));
    idx.add('c', 'GPU', keys(1, 2));
    idx.add('d', 'GPU', keys(2, 3));
    const chain = keys(1, 2, 3);
    expect(plain(idx.lookupSync(chain, { candidates: ['nope', 'c', 'a', 'd', 'c'] }))).toEqual([
      ['c', 2, [GPU, GPU]],
      ['a', 2, [GPU, GPU]],
    ]);
    expect(idx.lookupSync(chain, { candidates: ['nope', 'd'] })).toEqual([]);
    expect(idx.lookupSync(chain, { candidates: [] })).toEqual([]);
    // Without candidates: every endpoint holding block 0, longest first, ties by name.
    expect(plain(idx.lookupSync(chain)).map(([e, n]) => [e, n])).toEqual([
      ['b', 3],
      ['a', 2],
      ['c', 2],
    ]);
  });

  it('walks at most maxBlocks blocks', () => {
    const idx = new MemoryIndex();
    idx.add('a', 'GPU', keys(1, 2, 3, 4));
    expect(plain(idx.lookupSync(keys(1, 2, 3, 4), { maxBlocks: 2 }))).toEqual([['a', 2, [GPU, GPU]]]);
    expect(idx.lookupSync(keys(1, 2, 3, 4), { maxBlocks: 0 })).toEqual([]);
    expect(idx.lookupSync(keys(1, 2, 3, 4), { maxBlocks: 10 })[0].matchedBlocks).toBe(4);
  });

  it('reads the keys of a subarray view at its offset', () => {
    const idx = new MemoryIndex();
    const all = keys(7, 8, 9, 10);
    idx.add('a', 'GPU', all.subarray(1, 3));
    expect(plain(idx.lookupSync(all.subarray(1)))).toEqual([['a', 2, [GPU, GPU]]]);
    expect(idx.lookupSync(all)).toEqual([]);
  });

  it('keeps keys ≥ 2^63 and keys that differ in only one 32-bit half apart', () => {
    const idx = new MemoryIndex({ shards: 1 });
    const big = [2n ** 64n - 1n, 2n ** 63n, 2n ** 63n + 1n, 0n, 1n << 32n, 1n, (1n << 32n) | 1n];
    big.forEach((k, i) => idx.add(`e${i}`, 'GPU', keys(k)));
    big.forEach((k, i) => expect(plain(idx.lookupSync(keys(k)))).toEqual([[`e${i}`, 1, [GPU]]]));
    expect(idx.statsSync().keys).toBe(7);
    idx.remove('e0', 'GPU', keys(2n ** 64n - 1n));
    expect(idx.lookupSync(keys(2n ** 64n - 1n))).toEqual([]);
    expect(plain(idx.lookupSync(keys(2n ** 63n)))).toEqual([['e1', 1, [GPU]]]);
  });
});

describe('MemoryIndex clearEndpoint and per-endpoint counts', () => {
  it('drops every entry of one endpoint, all tiers and speculative, leaving others intact', () => {
    const idx = new MemoryIndex();
    idx.add('a', 'GPU', keys(1, 2, 3));
    idx.add('a', 'CPU', keys(1, 2));
    idx.reserveSync('a', keys(4), 1000);
    idx.add('b', 'GPU', keys(1, 2));
    idx.clearEndpoint('a');
    expect(plain(idx.lookupSync(keys(1, 2, 3, 4)))).toEqual([['b', 2, [GPU, GPU]]]);
    expect(idx.entriesOf('a')).toBe(0);
    expect(idx.entriesOf('b')).toBe(2);
    expect(idx.endpointEntriesSync('a')).toEqual({});
    expect(idx.statsSync()).toMatchObject({ entries: 2, keys: 2, endpoints: 1, speculativeEntries: 0 });
    idx.clearEndpoint('never-seen');
    idx.add('a', 'GPU', keys(1));
    expect(plain(idx.lookupSync(keys(1, 2)))).toEqual([
      ['b', 2, [GPU, GPU]],
      ['a', 1, [GPU]],
    ]);
  });

  it('counts entries per tier name, speculative ones under GPU', async () => {
    const idx = new MemoryIndex();
    idx.add('a', 'GPU', keys(1, 2));
    idx.add('a', 'CPU', keys(2));
    idx.reserveSync('a', keys(3, 4), 1000);
    expect(await idx.endpointEntries('a')).toEqual({ GPU: 4, CPU: 1 });
    expect(await idx.endpointEntries('zzz')).toEqual({});
    expect(idx.entriesOf('a')).toBe(5);
  });
});

describe('MemoryIndex eviction at maxEntries', () => {
  it("evicts the least recently stored entry of the endpoint holding the most entries", () => {
    const idx = new MemoryIndex({ maxEntries: 5 });
    idx.add('A', 'GPU', keys(11, 12, 13));
    idx.add('B', 'GPU', keys(21, 22));
    idx.add('A', 'GPU', keys(11)); // existing entry: no eviction, becomes A's most recent
    expect(idx.statsSync()).toMatchObject({ entries: 5, evictions: 0 });

    idx.add('C', 'GPU', keys(31)); // A has 3 (the most): its oldest is 12
    expect(idx.lookupSync(keys(12))).toEqual([]);
    expect(idx.statsSync()).toMatchObject({ entries: 5, evictions: 1 });

    idx.add('C', 'GPU', keys(32)); // A 2, B 2, C 1: tie → lowest id (A, registered first); its oldest is 13
    expect(idx.lookupSync(keys(13))).toEqual([]);
    expect(plain(idx.lookupSync(keys(11)))).toEqual([['A', 1, [GPU]]]);

    idx.add('C', 'CPU', keys(31)); // a new (key, endpoint, tier) entry: B now has the most (2); its oldest is 21
    expect(idx.lookupSync(keys(21))).toEqual([]);
    expect(plain(idx.lookupSync(keys(22)))).toEqual([['B', 1, [GPU]]]);
    expect(plain(idx.lookupSync(keys(31)))).toEqual([['C', 1, [GPU | CPU]]]);
    expect(idx.statsSync()).toMatchObject({ entries: 5, evictions: 3 });
    expect([idx.entriesOf('A'), idx.entriesOf('B'), idx.entriesOf('C')]).toEqual([1, 1, 3]);
  });

  it('counts speculative entries toward the bound and evicts them too', () => {
    let now = 0;
    const idx = new MemoryIndex({ maxEntries: 3, clock: () => now });
    idx.reserveSync('S', keys(1, 2), 1000);
    idx.add('A', 'GPU', keys(9));
    idx.add('A', 'GPU', keys(8)); // S holds the most (2): its oldest, speculative key 1, goes
    expect(idx.lookupSync(keys(1))).toEqual([]);
    expect(plain(idx.lookupSync(keys(2)))).toEqual([['S', 1, [SPEC]]]);
    expect(idx.statsSync()).toMatchObject({ entries: 3, speculativeEntries: 1, evictions: 1 });
  });

  it('never evicts when re-adding or converting a held entry', () => {
    const idx = new MemoryIndex({ maxEntries: 2 });
    idx.add('A', 'GPU', keys(1));
    idx.reserveSync('A', keys(2), 5000);
    idx.add('A', 'CPU', keys(2)); // confirms the speculative entry in place
    idx.add('A', 'GPU', keys(1));
    expect(idx.statsSync()).toMatchObject({ entries: 2, evictions: 0, speculativeEntries: 0 });
  });
});

describe('MemoryIndex speculative entries', () => {
  it('reserve → visible with SPECULATIVE_BIT → confirming add clears it → release leaves confirmed', () => {
    let now = 1_000;
    const idx = new MemoryIndex({ clock: () => now });
    idx.add('a', 'GPU', keys(1));
    idx.reserveSync('a', keys(1, 2, 3), 2000); // key 1 is already held: untouched
    expect(plain(idx.lookupSync(keys(1, 2, 3)))).toEqual([['a', 3, [GPU, SPEC, SPEC]]]);
    expect(idx.statsSync()).toMatchObject({ entries: 3, speculativeEntries: 2 });

    idx.add('a', 'CPU', keys(2)); // confirming store on any tier replaces the speculative entry
    expect(plain(idx.lookupSync(keys(1, 2, 3)))).toEqual([['a', 3, [GPU, CPU, SPEC]]]);
    expect(idx.statsSync()).toMatchObject({ entries: 3, speculativeEntries: 1 });

    expect(idx.releaseSync('a', keys(1, 2, 3))).toBe(1);
    expect(plain(idx.lookupSync(keys(1, 2, 3)))).toEqual([['a', 2, [GPU, CPU]]]);
    expect(idx.releaseSync('a', keys(1, 2, 3))).toBe(0);
    expect(idx.releaseSync('other', keys(1))).toBe(0);
    idx.remove('a', 'CPU', keys(2));
    expect(idx.statsSync()).toMatchObject({ entries: 1, speculativeEntries: 0, removesOfUnknown: 0 });
  });

  it('does not let remove() touch a speculative entry', () => {
    const idx = new MemoryIndex();
    idx.reserveSync('a', keys(5), 60_000);
    idx.remove('a', 'GPU', keys(5));
    expect(plain(idx.lookupSync(keys(5)))).toEqual([['a', 1, [SPEC]]]);
    expect(idx.statsSync().removesOfUnknown).toBe(1);
  });

  it('scores speculative entries for the reserving endpoint only', () => {
    const idx = new MemoryIndex();
    idx.add('b', 'GPU', keys(1, 2));
    idx.reserveSync('a', keys(1, 2), 60_000);
    expect(plain(idx.lookupSync(keys(1, 2), { candidates: ['a', 'b'] }))).toEqual([
      ['a', 2, [SPEC, SPEC]],
      ['b', 2, [GPU, GPU]],
    ]);
  });

  it('expires by the injected clock, and by options.now at read time', () => {
    let now = 1_000;
    const idx = new MemoryIndex({ clock: () => now });
    idx.reserveSync('a', keys(1, 2), 100); // expires at 1100
    now = 1_099;
    expect(idx.lookupSync(keys(1, 2))[0].matchedBlocks).toBe(2);
    expect(idx.lookupSync(keys(1, 2), { now: 1_100 })).toEqual([]);
    now = 1_100;
    expect(idx.lookupSync(keys(1, 2))).toEqual([]);
    expect(idx.lookupSync(keys(1, 2), { now: 1_050 })[0].matchedBlocks).toBe(2); // not swept yet
    expect(idx.releaseSync('a', keys(1))).toBe(0); // already expired: reclaimed, not counted
    expect(idx.sweepExpired()).toBe(1);
    expect(idx.lookupSync(keys(2), { now: 1_050 })).toEqual([]);
    expect(idx.statsSync()).toMatchObject({ entries: 0, keys: 0, speculativeEntries: 0, expiredSpeculative: 1 });
  });

  it('extends the expiry of an existing speculative entry', () => {
    let now = 0;
    const idx = new MemoryIndex({ clock: () => now });
    idx.reserveSync('a', keys(1), 100); // 100
    now = 50;
    idx.reserveSync('a', keys(1), 100); // 150
    idx.reserveSync('a', keys(1), 10); // stays 150 (never shortened)
    now = 120;
    expect(idx.sweepExpired()).toBe(0);
    expect(idx.lookupSync(keys(1))[0].tierMasks[0]).toBe(SPEC);
    expect(idx.sweepExpired(149)).toBe(0);
    expect(idx.sweepExpired(150)).toBe(1);
    expect(idx.statsSync().speculativeEntries).toBe(0);
  });

  it('reclaims expired entries from the write path and from stats', () => {
    let now = 0;
    const idx = new MemoryIndex({ clock: () => now });
    idx.reserveSync('a', keys(1, 2, 3), 10);
    now = 10;
    idx.add('b', 'GPU', keys(9)); // sweeps due entries as a side effect
    expect(idx.statsSync()).toMatchObject({ entries: 1, keys: 1, speculativeEntries: 0, expiredSpeculative: 3 });
    idx.reserveSync('a', keys(1), 10);
    now = 25;
    expect(idx.entriesOf('a')).toBe(0);
  });

  it('re-reserving after expiry creates a fresh entry', () => {
    let now = 0;
    const idx = new MemoryIndex({ clock: () => now });
    idx.reserveSync('a', keys(1), 10);
    now = 10;
    idx.reserveSync('a', keys(1), 10); // the expired entry is swept or renewed: expires at 20 either way
    now = 19;
    expect(idx.lookupSync(keys(1))[0].tierMasks[0]).toBe(SPEC);
    now = 20;
    expect(idx.lookupSync(keys(1))).toEqual([]);
  });
});

describe('MemoryIndex validation at the edge', () => {
  const bad: [string, (idx: MemoryIndex) => unknown, ErrorConstructor][] = [
    ['keys not a BigUint64Array', (i) => i.add('a', 'GPU', [1n] as unknown as BigUint64Array), TypeError],
    ['Uint32Array keys', (i) => i.add('a', 'GPU', new Uint32Array(2) as unknown as BigUint64Array), TypeError],
    ['empty endpoint', (i) => i.add('', 'GPU', keys(1)), TypeError],
    ['non-string endpoint', (i) => i.remove(7 as unknown as string, 'GPU', keys(1)), TypeError],
    ['non-string tier', (i) => i.add('a', null as unknown as string, keys(1)), TypeError],
    ['zero ttl', (i) => i.reserveSync('a', keys(1), 0), RangeError],
    ['negative ttl', (i) => i.reserveSync('a', keys(1), -5), RangeError],
    ['NaN ttl', (i) => i.reserveSync('a', keys(1), NaN), RangeError],
    ['infinite ttl', (i) => i.reserveSync('a', keys(1), Infinity), RangeError],
    ['negative maxBlocks', (i) => i.lookupSync(keys(1), { maxBlocks: -1 }), RangeError],
    ['fractional maxBlocks', (i) => i.lookupSync(keys(1), { maxBlocks: 1.5 }), RangeError],
    ['NaN now', (i) => i.lookupSync(keys(1), { now: NaN }), RangeError],
    ['candidates not strings', (i) => i.lookupSync(keys(1), { candidates: [1 as unknown as string] }), TypeError],
    ['release with bad keys', (i) => i.releaseSync('a', 'x' as unknown as BigUint64Array), TypeError],
    ['clear with empty name', (i) => i.clearEndpoint(''), TypeError],
  ];
  for (const [what, call, type] of bad) {
    it(`rejects ${what} and changes nothing`, () => {
      const idx = new MemoryIndex();
      idx.add('a', 'GPU', keys(1));
      const before = idx.statsSync();
      expect(() => call(idx)).toThrow(type);
      expect(idx.statsSync()).toEqual(before);
      expect(plain(idx.lookupSync(keys(1)))).toEqual([['a', 1, [GPU]]]);
    });
  }

  it('rejects bad constructor options', () => {
    expect(() => new MemoryIndex({ shards: 3 })).toThrow(RangeError);
    expect(() => new MemoryIndex({ shards: 0 })).toThrow(RangeError);
    expect(() => new MemoryIndex({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => new MemoryIndex({ maxEntries: 1.5 })).toThrow(RangeError);
  });

  it('rejects through the async methods as promise rejections', async () => {
    const idx = new MemoryIndex();
    await expect(idx.reserve('a', keys(1), 0)).rejects.toThrow(RangeError);
    await expect(idx.lookup([] as unknown as BigUint64Array)).rejects.toThrow(TypeError);
  });
});

describe('MemoryIndex async surface and lifecycle', () => {
  it('wraps the synchronous methods', async () => {
    let now = 0;
    const idx = new MemoryIndex({ clock: () => now, maxEntries: 1000 });
    expect(idx.backend).toBe('memory');
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
    expect(s.maxEntries).toBe(1000);
    expect(s.bytes).toBeGreaterThan(0);
    expect(s.bytes).toBe(idx.statsSync().bytes);
    await idx.close();
    expect(() => idx.lookupSync(keys(1))).toThrow(/closed/);
    expect(() => idx.add('a', 'GPU', keys(1))).toThrow(/closed/);
    await idx.close();
  });
});
