import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fixTableSeed, mixKey, tableSeed } from '../../../src/index/table/mix.js';
import { U64Table } from '../../../src/index/table/u64-table.js';

const lo = (k: bigint) => Number(k & 0xffffffffn);
const hi = (k: bigint) => Number(k >> 32n);

describe('U64Table', () => {
  it('agrees with a Map under random inserts and deletes (property)', () => {
    const key = fc.oneof(
      fc.bigInt({ min: 0n, max: 40n }),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      // keys differing only in the high half, to exercise both halves of the comparison
      fc.bigInt({ min: 0n, max: 7n }).map((h) => (h << 32n) | 5n),
      // the key 0 (kept in a reserved slot) and keys with one zero half
      fc.constantFrom(0n, 1n, 1n << 32n),
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

  it('keeps the key 0 (a legal engine hash) apart from the empty-slot marker', () => {
    const table = new U64Table(2);
    expect(table.find(0, 0)).toBe(-1);
    const zero = table.insert(0, 0);
    expect(table.size).toBe(1);
    expect(table.keyLo(zero)).toBe(0);
    expect(table.keyHi(zero)).toBe(0);
    expect(table.data[table.valueAt(zero)]).toBe(0);
    table.data[table.valueAt(zero) + 1] = 77;
    // Inserting it again finds the same slot and keeps the values.
    expect(table.insert(0, 0)).toBe(zero);
    expect(table.size).toBe(1);
    // Keys with one zero half are ordinary keys.
    table.data[table.valueAt(table.insert(0, 1))] = 1;
    table.data[table.valueAt(table.insert(1, 0))] = 2;
    expect(table.size).toBe(3);
    expect(table.find(0, 0)).toBe(zero);
    // Growth moves the reserved slot with its values.
    for (let i = 1; i <= 100; i++) table.data[table.valueAt(table.insert(i, 7))] = i;
    expect(table.size).toBe(103);
    const moved = table.find(0, 0);
    expect(moved).not.toBe(zero);
    expect(table.data[table.valueAt(moved) + 1]).toBe(77);
    expect(table.data[table.valueAt(table.find(0, 1))]).toBe(1);
    expect(table.data[table.valueAt(table.find(1, 0))]).toBe(2);
    let visited = 0;
    let sawZero = false;
    table.forEachSlot((slot) => {
      visited++;
      if (slot === moved) sawZero = true;
    });
    expect(visited).toBe(103);
    expect(sawZero).toBe(true);
    // Deleting it frees the reserved slot and zeroes its values for the next insert.
    table.delete(moved);
    expect(table.size).toBe(102);
    expect(table.find(0, 0)).toBe(-1);
    const again = table.insert(0, 0);
    expect(table.data[table.valueAt(again) + 1]).toBe(0);
    table.clear();
    expect(table.find(0, 0)).toBe(-1);
    expect(table.size).toBe(0);
  });

  it('backward-shift deletion keeps colliding keys findable and vacated slots zeroed', () => {
    const seed = 0x5eed;
    const table = new U64Table(1, { seed });
    // Keys sharing one home slot (capacity 16), next to the key 0.
    const home = mixKey(1, 9, seed) & 15;
    const colliding: number[] = [];
    for (let lo = 1; colliding.length < 4; lo++) if ((mixKey(lo, 9, seed) & 15) === home) colliding.push(lo);
    table.insert(0, 0);
    for (const lo of colliding) table.data[table.valueAt(table.insert(lo, 9))] = lo;
    expect(table.size).toBe(5);
    const slots = colliding.map((lo) => table.find(lo, 9));
    expect(slots).toEqual([0, 1, 2, 3].map((i) => (home + i) & 15));
    // Delete the head of the run: the others shift back one slot each.
    table.delete(slots[0]);
    expect(colliding.slice(1).map((lo) => table.find(lo, 9))).toEqual(slots.slice(0, 3));
    for (const lo of colliding.slice(1)) expect(table.data[table.valueAt(table.find(lo, 9))]).toBe(lo);
    expect(table.find(colliding[0], 9)).toBe(-1);
    // The slot vacated at the end of the run is empty again, values included.
    expect(table.keyLo(slots[3])).toBe(0);
    expect(table.data[table.valueAt(slots[3])]).toBe(0);
    expect(table.find(0, 0)).toBe(16);
    expect(table.size).toBe(4);
    // A re-inserted key starts with zeroed values.
    expect(table.data[table.valueAt(table.insert(colliding[0], 9))]).toBe(0);
  });

  it('shrinks below 1/8 load when asked, never under its minimum capacity, and keeps every key', () => {
    const table = new U64Table(1, { shrink: true, minCapacity: 32 });
    for (let i = 1; i <= 1000; i++) table.data[table.valueAt(table.insert(i, 3))] = i;
    // 1000 keys: grown to 2048 slots (+1 reserved), 3 words each.
    expect(table.byteLength).toBe(2049 * 3 * 4);
    for (let i = 1; i <= 990; i++) table.delete(table.find(i, 3));
    expect(table.size).toBe(10);
    // 10 keys: halved while under 1/8 load, down to 64 slots (10 ≥ 64/8 stops it).
    expect(table.byteLength).toBe(65 * 3 * 4);
    for (let i = 991; i <= 1000; i++) expect(table.data[table.valueAt(table.find(i, 3))]).toBe(i);
    for (let i = 991; i <= 1000; i++) table.delete(table.find(i, 3));
    expect(table.byteLength).toBe(33 * 3 * 4);
    // Without the option a table keeps its capacity.
    const kept = new U64Table(1);
    for (let i = 1; i <= 100; i++) kept.insert(i, 0);
    const bytes = kept.byteLength;
    for (let i = 1; i <= 100; i++) kept.delete(kept.find(i, 0));
    expect(kept.byteLength).toBe(bytes);
  });

  it('as a shard, takes the home slot from the mix bits above the shard bits', () => {
    const seed = 77;
    const table = new U64Table(1, { seed, shift: 3 });
    for (let lo = 1; lo <= 5; lo++) {
      const h = mixKey(lo, 1, seed);
      expect(table.mix(lo, 1)).toBe(h);
      expect(table.homeSlot(h)).toBe((h >>> 3) & 15);
      table.insertMixed(lo, 1, h);
    }
    // Alone in the table, a key sits at its home slot.
    const lone = new U64Table(1, { seed, shift: 3 });
    const slot = lone.insert(42, 42);
    expect(slot).toBe((mixKey(42, 42, seed) >>> 3) & 15);
    expect(lone.findMixed(42, 42, mixKey(42, 42, seed))).toBe(slot);
  });
});

describe('seeded mix', () => {
  it('is a pure function of key and seed, and the seed changes where keys land', () => {
    expect(mixKey(1, 2, 3)).toBe(mixKey(1, 2, 3));
    // Keys chosen to share one home slot (of 1024) under one seed spread out under another: a publisher who does not
    // know the process seed cannot build a probe run (here no two of the 64 share a home under the other seed).
    const home = mixKey(0, 0, 1) & 1023;
    const crafted: number[] = [];
    for (let lo = 1; crafted.length < 64; lo++) if ((mixKey(lo, 0, 1) & 1023) === home) crafted.push(lo);
    const homesUnderSeed2 = new Set(crafted.map((lo) => mixKey(lo, 0, 2) & 1023));
    expect(homesUnderSeed2.size).toBe(64);
  });

  it('defaults to the process seed, which tests can fix', () => {
    const before = tableSeed();
    try {
      fixTableSeed(1234);
      expect(tableSeed()).toBe(1234);
      expect(new U64Table(1).seed).toBe(1234);
      expect(new U64Table(1, { seed: 9 }).seed).toBe(9);
      expect(() => fixTableSeed(-1)).toThrow(RangeError);
      expect(() => fixTableSeed(2 ** 32)).toThrow(RangeError);
      expect(tableSeed()).toBe(1234);
    } finally {
      fixTableSeed(before);
    }
  });
});
