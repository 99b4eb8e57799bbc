import { describe, expect, it } from 'vitest';
import { MemoryIndex, SPECULATIVE_BIT } from '../../../src/index/index.js';
import { describeIndexBehaviour } from '../../support/index-behaviour.js';
import { keys, plain } from './helpers.js';

// The behaviour every backend shares (test/support/index-behaviour.ts); the Redis backend runs the same suite.
describeIndexBehaviour('MemoryIndex', ({ tiers, clock }) => new MemoryIndex({ tiers, clock }));

const GPU = 1;
const CPU = 2;
const SPEC = (GPU | SPECULATIVE_BIT) >>> 0;

describe('MemoryIndex add / remove / lookup (memory specifics)', () => {
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

describe('MemoryIndex eviction at maxEntries', () => {
  it('evicts the least recently stored entry of the endpoint holding the most entries', () => {
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
    const now = 0;
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

describe('MemoryIndex validation at the edge', () => {
  // The validation table runs against every backend in test/support/index-behaviour.ts; these are memory-only.
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
    const now = 0;
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
