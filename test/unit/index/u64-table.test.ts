import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { U64Table } from '../../../src/index/u64-table.js';

const lo = (k: bigint) => Number(k & 0xffffffffn);
const hi = (k: bigint) => Number(k >> 32n);

describe('U64Table', () => {
  it('agrees with a Map under random inserts and deletes (property)', () => {
    const key = fc.oneof(
      fc.bigInt({ min: 0n, max: 40n }),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      // keys differing only in the high half, to exercise both halves of the comparison
      fc.bigInt({ min: 0n, max: 7n }).map((h) => (h << 32n) | 5n),
    );
    const op = fc.tuple(fc.boolean(), key, fc.nat(1000));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const table = new U64Table(1);
        const model = new Map<bigint, number>();
        for (const [insert, k, v] of ops) {
          if (insert) {
            const slot = table.insert(lo(k), hi(k));
            table.data[table.valueAt(slot)] = v;
            model.set(k, v);
          } else {
            const slot = table.find(lo(k), hi(k));
            expect(slot >= 0).toBe(model.has(k));
            if (slot >= 0) table.delete(slot);
            model.delete(k);
          }
        }
        expect(table.size).toBe(model.size);
        for (const [k, v] of model) {
          const slot = table.find(lo(k), hi(k));
          expect(slot).toBeGreaterThanOrEqual(0);
          expect(table.data[table.valueAt(slot)]).toBe(v);
          expect(table.keyLo(slot)).toBe(lo(k));
          expect(table.keyHi(slot)).toBe(hi(k));
        }
        let visited = 0;
        table.forEachSlot(() => visited++);
        expect(visited).toBe(model.size);
      }),
      { numRuns: 300 },
    );
  });

  it('grows through many resizes and clears back to empty', () => {
    const table = new U64Table(2);
    for (let i = 0; i < 100_000; i++) {
      const slot = table.insert(i, i ^ 0x5a5a5a5a);
      table.data[table.valueAt(slot) + 1] = i;
    }
    expect(table.size).toBe(100_000);
    for (let i = 0; i < 100_000; i += 997) expect(table.data[table.valueAt(table.find(i, i ^ 0x5a5a5a5a)) + 1]).toBe(i);
    expect(table.find(100_001, 0)).toBe(-1);
    table.clear();
    expect(table.size).toBe(0);
    expect(table.find(5, 5 ^ 0x5a5a5a5a)).toBe(-1);
  });
});
