import { describe, expect, it } from 'vitest';
import { FieldError, normaliseHash } from '../../../src/events/decode/index.js';

function fieldError(fn: () => unknown): FieldError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FieldError) return err;
    throw err;
  }
  throw new Error('expected a FieldError');
}

describe('normaliseHash', () => {
  it('keeps uint64 values, including those above 2^63', () => {
    expect(normaliseHash(18446744073709551615n, 'h')).toBe(18446744073709551615n);
    expect(normaliseHash(9223372036854775808n, 'h')).toBe(9223372036854775808n);
    expect(normaliseHash(0n, 'h')).toBe(0n);
    expect(normaliseHash(12345, 'h')).toBe(12345n);
  });

  it('reinterprets signed int64 as two’s complement', () => {
    expect(normaliseHash(-1n, 'h')).toBe(18446744073709551615n);
    expect(normaliseHash(-1, 'h')).toBe(18446744073709551615n);
    expect(normaliseHash(-9223372036854775808n, 'h')).toBe(9223372036854775808n);
    expect(normaliseHash(-2, 'h')).toBe(18446744073709551614n);
  });

  it('takes the last 8 bytes of a digest, big-endian', () => {
    const sha = new Uint8Array(32);
    for (let i = 0; i < 32; i++) sha[i] = i;
    // bytes 24..31 = 18 19 1a 1b 1c 1d 1e 1f
    expect(normaliseHash(sha, 'h')).toBe(0x18191a1b1c1d1e1fn);
    const xx = Uint8Array.from([0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x80, 0, 0, 0, 0, 0, 0, 0x01]);
    expect(normaliseHash(xx, 'h')).toBe(9223372036854775809n);
  });

  it('left-pads short bytes with zeros', () => {
    expect(normaliseHash(Uint8Array.from([0x01, 0x02]), 'h')).toBe(0x0102n);
    expect(normaliseHash(Uint8Array.from([0xff]), 'h')).toBe(255n);
    expect(normaliseHash(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 'h')).toBe(0x0102030405060708n);
  });

  it('rejects what is not a hash, naming the field', () => {
    const cases: [unknown, string][] = [
      ['abc', 'expected int or bytes, got string'],
      [1.5, 'expected int or bytes, got float (1.5)'],
      [2 ** 60, 'expected int or bytes, got float (1152921504606847000)'],
      [null, 'expected int or bytes, got nil'],
      [[1], 'expected int or bytes, got array'],
      [new Uint8Array(0), 'expected 1..32 bytes, got 0 bytes'],
      [new Uint8Array(33), 'expected 1..32 bytes, got 33 bytes'],
      [1n << 64n, 'expected int64 or uint64, got 18446744073709551616'],
      [-(1n << 63n) - 1n, 'expected int64 or uint64, got -9223372036854775809'],
    ];
    for (const [value, message] of cases) {
      const err = fieldError(() => normaliseHash(value, 'events[1].block_hashes[4]'));
      expect({ reason: err.reason, field: err.field, message: err.message }).toStrictEqual({
        reason: 'bad_hash',
        field: 'events[1].block_hashes[4]',
        message,
      });
    }
  });
});
