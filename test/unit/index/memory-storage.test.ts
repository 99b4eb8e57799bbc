import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EndpointRegistry, MemoryIndex } from '../../../src/index/index.js';
import { KeyTable } from '../../../src/index/memory/key-table.js';
import { keys, plain } from './helpers.js';

const lo = (k: bigint) => Number(k & 0xffffffffn);
const hi = (k: bigint) => Number(k >> 32n);

/** n distinct keys: a third random, a third with an empty low half, a third with an empty high half. */
function manyKeys(n: number): BigUint64Array {
  const out = new BigUint64Array(n);
  const w = new Uint32Array(out.buffer);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    if (i % 3 === 0) {
      w[2 * i] = x >>> 0;
      w[2 * i + 1] = (i * 2654435761) >>> 0; // distinct high halves keep random keys distinct
    } else if (i % 3 === 1) {
      w[2 * i + 1] = i;
    } else {
      w[2 * i] = i;
      w[2 * i + 1] = 0x80000000;
    }
  }
  return out;
}

describe('sharded key table', () => {
  it('finds every key after many resizes (300k keys, 4 shards), and after deletes and shrinking', () => {
    const idx = new MemoryIndex({ shards: 4 });
    const all = manyKeys(300_000);
    for (let i = 0; i < all.length; i += 1000) idx.add('a', 'GPU', all.subarray(i, i + 1000));
    expect(idx.statsSync()).toMatchObject({ entries: 300_000, keys: 300_000 });
    expect(idx.lookupSync(all)[0].matchedBlocks).toBe(300_000);

    // Remove every other key: the rest are still found, the removed ones are gone.
    const odd = new BigUint64Array(150_000);
    const even = new BigUint64Array(150_000);
    for (let i = 0; i < 150_000; i++) {
      even[i] = all[2 * i];
      odd[i] = all[2 * i + 1];
    }
    idx.remove('a', 'GPU', odd);
    expect(idx.statsSync()).toMatchObject({ entries: 150_000, keys: 150_000, removesOfUnknown: 0 });
    expect(idx.lookupSync(even)[0].matchedBlocks).toBe(150_000);
    let found = 0;
    for (let i = 0; i < odd.length; i++) if (idx.lookupSync(odd.subarray(i, i + 1)).length > 0) found++;
    expect(found).toBe(0);

    // Down to 100 keys: the tables shrink and still find what is left.
    const bytesBefore = idx.statsSync().bytes;
    idx.remove('a', 'GPU', even.subarray(100));
    expect(idx.statsSync().bytes).toBeLessThan(bytesBefore);
    expect(idx.lookupSync(even.subarray(0, 100))[0].matchedBlocks).toBe(100);
    expect(idx.lookupSync(even.subarray(100, 101))).toEqual([]);
    expect(idx.statsSync()).toMatchObject({ entries: 100, keys: 100 });
  });

  it('agrees with a Map under random inserts, updates and deletes, including batched heads (property)', () => {
    const key = fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.bigInt({ min: 0n, max: 600n }),
      fc.bigInt({ min: 0n, max: 600n }).map((h) => h << 32n),
    );
    const op = fc.tuple(key, fc.nat({ max: 3 }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 1500 }), fc.constantFrom(1, 2), fc.nat(), (ops, shards, seed) => {
        const table = new KeyTable(shards, seed);
        const model = new Map<bigint, number>();
        let n = 1;
        for (const [k, action] of ops) {
          if (action === 0) {
            table.setHead(lo(k), hi(k), 0);
            model.delete(k);
          } else {
            table.setHead(lo(k), hi(k), n);
            model.set(k, n++);
          }
          expect(table.head(lo(k), hi(k))).toBe(model.get(k) ?? 0);
        }
        expect(table.size).toBe(model.size);
        const probe = BigUint64Array.from(ops.map(([k]) => k));
        const words = new Uint32Array(probe.buffer);
        const out = new Uint32Array(16);
        for (let i = 0; i < probe.length; i += 16) {
          const to = Math.min(i + 16, probe.length);
          table.heads(words, i, to, out);
          for (let j = i; j < to; j++) expect(out[j - i]).toBe(model.get(probe[j]) ?? 0);
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe('EndpointRegistry', () => {
  it('interns names to small ids and reuses released ids', () => {
    const r = new EndpointRegistry(3);
    expect([r.intern('a'), r.intern('b'), r.intern('a'), r.intern('c')]).toEqual([0, 1, 0, 2]);
    expect(r.full).toBe(true);
    expect(() => r.intern('d')).toThrow(RangeError);
    r.release(1);
    expect(r.find('b')).toBeUndefined();
    expect(r.intern('d')).toBe(1);
    expect(r.name(1)).toBe('d');
    expect(r.size).toBe(3);
  });

  it('lets the index reclaim ids of endpoints that hold nothing', () => {
    const idx = new MemoryIndex();
    for (let i = 0; i < 65_536; i++) idx.add(`e${i}`, 'GPU', keys());
    idx.add('busy', 'GPU', keys(1)); // every id was taken, but none held entries
    idx.add('busy2', 'GPU', keys(2));
    expect(plain(idx.lookupSync(keys(1)))).toEqual([['busy', 1, [1]]]);
    expect(idx.statsSync().endpoints).toBe(2);
  });
});
