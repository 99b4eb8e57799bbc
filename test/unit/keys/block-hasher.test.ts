import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockHasher, blockExtras, parseKey } from '../../../src/keys/index.js';
import { CborWriter } from '../../../src/keys/cbor.js';
import { fnv64a } from '../../../src/keys/fnv.js';
import { referenceKeys } from './reference-hasher.js';

describe('BlockHasher', () => {
  it('gives keys only to full blocks', () => {
    const h = new BlockHasher({ blockSize: 4, hashSeed: '' });
    expect(h.keysFor('m', [1, 2, 3]).length).toBe(0);
    expect(h.keysFor('m', [1, 2, 3, 4, 5, 6, 7]).length).toBe(1);
    expect(h.keysFor('m', [1, 2, 3, 4, 5, 6, 7, 8]).length).toBe(2);
    expect(h.fullBlocks(7)).toBe(1);
  });

  it('matches the BigInt reference for every CBOR integer width and for extras (property)', () => {
    const token = fc.oneof(
      fc.integer({ min: 0, max: 23 }),
      fc.integer({ min: 24, max: 255 }),
      fc.integer({ min: 256, max: 65535 }),
      fc.integer({ min: 65536, max: 0xffffffff }),
    );
    const ident = fc.string({ minLength: 1, maxLength: 70 });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.array(token, { maxLength: 200 }),
        fc.string({ maxLength: 10 }),
        fc.string({ maxLength: 30 }),
        fc.array(fc.option(fc.array(ident, { maxLength: 3 }), { nil: null }), { maxLength: 12 }),
        (blockSize, tokens, seed, model, extras) => {
          const h = new BlockHasher({ blockSize, hashSeed: seed });
          const ref = referenceKeys(model, seed, blockSize, tokens, extras);
          expect(h.rootKey(model)).toBe(ref.root);
          expect([...h.keysFor(model, tokens, extras)]).toEqual(ref.keys);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('one hasher reused over thousands of identifiers (its cache of one-identifier extras fills and clears) matches the reference', () => {
    const h = new BlockHasher({ blockSize: 4, hashSeed: 's' });
    const tokens = Array.from({ length: 12 }, (_, i) => i * 1_000);
    for (let i = 0; i < 6_000; i++) {
      const id = i % 3 === 0 ? 'lora-adapter' : `img-${i}-ü`;
      const extras = [[id], null, [id, 'other']];
      if (i % 97 === 0 || i > 5_990)
        expect([...h.keysFor('m', tokens, extras)]).toEqual(referenceKeys('m', 's', 4, tokens, extras).keys);
      else h.keysFor('m', tokens, extras);
    }
  });

  it('folds parents of every width (small parents use short CBOR heads)', () => {
    const h = new BlockHasher({ blockSize: 2, hashSeed: '' });
    for (const parent of [0n, 23n, 24n, 255n, 256n, 65535n, 65536n, 0xffffffffn, 0x100000000n, 2n ** 64n - 1n]) {
      expect(h.chain([7, 8], parent)[0]).toBe(referenceChain(parent, [7, 8]));
    }
  });

  it('writes into a caller-provided buffer and grows its memory for very long prompts', () => {
    const h = new BlockHasher({ blockSize: 16, hashSeed: 'x' });
    const tokens = Uint32Array.from({ length: 16 * 40_000 }, (_, i) => (i * 7919) % 151_000);
    const out = new BigUint64Array(40_000);
    const keys = h.chain(tokens, 5n, null, out);
    expect(keys.length).toBe(40_000);
    expect(keys.buffer).toBe(out.buffer);
    const again = h.chain(tokens.subarray(16 * 39_999), keys[39_998]);
    expect(again[0]).toBe(keys[39_999]);
  });

  it('rejects bad block sizes and non-uint32 tokens with clear errors', () => {
    expect(() => new BlockHasher({ blockSize: 0, hashSeed: '' })).toThrow(/blockSize must be an integer/);
    const h = new BlockHasher({ blockSize: 2, hashSeed: '' });
    expect(() => h.keysFor('m', [1, -1])).toThrow(/token 1 is not a uint32: -1/);
    expect(() => h.keysFor('m', [1.5, 2])).toThrow(/token 0 is not a uint32/);
  });

  it('reports its fingerprint', () => {
    expect(new BlockHasher({ blockSize: 16, hashSeed: '42' }).fingerprint).toEqual({
      scheme: 'cbor-fnv64a',
      blockSize: 16,
      hashSeed: '42',
    });
  });
});

describe('blockExtras', () => {
  it('taints every block an item overlaps, sorted by offset, salt last on block 0', () => {
    const items = [
      { identifier: 'b', offset: 20, length: 30 },
      { identifier: 'a', offset: 0, length: 17 },
    ];
    expect(blockExtras(items, 64, 16, 'salt')).toEqual([['a', 'salt'], ['a', 'b'], ['b'], ['b']]);
    expect(blockExtras([], 64, 16, null)).toBeNull();
    expect(blockExtras([], 10, 16, 'salt')).toBeNull();
    // An item that ends exactly at a block boundary does not taint the next block.
    expect(blockExtras([{ identifier: 'x', offset: 0, length: 16 }], 32, 16)).toEqual([['x'], null]);
  });
});

describe('parseKey', () => {
  it('accepts uint64 decimal and hex strings and rejects the rest', () => {
    expect(parseKey('18446744073709551615')).toBe(2n ** 64n - 1n);
    expect(parseKey('0xff')).toBe(255n);
    expect(() => parseKey('18446744073709551616')).toThrow(/outside uint64/);
    expect(() => parseKey('-1')).toThrow(/not a uint64/);
    expect(() => parseKey(2 ** 60)).toThrow(/not a safe integer/);
  });
});

/** cbor([parent, tokens, null]) hashed with FNV-64a, through the reference helpers. */
function referenceChain(parent: bigint, tokens: number[]): bigint {
  const w = new CborWriter().arrayHead(3).uint(parent).arrayHead(tokens.length);
  for (const t of tokens) w.uint(t);
  return fnv64a(w.nil().bytes());
}
