import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { MsgpackError, readMsgpack, wireList } from '../../../src/events/decode/msgpack-reader.js';

/**
 * The payload reader's own rules (src/events/decode/msgpack-reader.ts). Agreement with @msgpack/msgpack on random
 * values, deep nesting and ext values: test/fuzz/msgpack-decoder.test.ts.
 */

const pack = (value: unknown) => encode(value, { useBigInt64: true });
/** A value placed where an event field is: depth 3 ([ts, [event], rank] → events → event → field). */
const asField = (field: unknown) => pack([0, [['Tag', field]], 0]);
const fieldOf = (bytes: Uint8Array) => ((readMsgpack(bytes) as unknown[][])[1][0] as unknown[])[1];

describe('lists of unsigned ints in event fields are packed', () => {
  it('into a Uint32Array when every element is an int encoding of up to 32 bits (every width)', () => {
    const values = [0, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, 0xffff_ffff];
    const bytes = asField(values);
    // fixint, uint8, uint16 and uint32 encodings all occur
    expect([0x7f, 0xcc, 0xcd, 0xce].every((t) => bytes.includes(t))).toBe(true);
    const field = fieldOf(bytes);
    expect(field).toBeInstanceOf(Uint32Array);
    expect(Array.from(field as Uint32Array)).toEqual(values);
  });

  it('the same values whether a list ends the payload or has more bytes after it (the fast loop reads 4 bytes ahead)', () => {
    const values = Array.from(
      { length: 200 },
      (_, i) => [i % 128, 128 + (i % 128), 256 + i * 97, 65_536 + i * 9_973, 0xffff_ffff][i % 5],
    );
    const last = encode([0, [['Tag', values]]]);
    const middle = encode([0, [['Tag', values, 'after', 'x'.repeat(40)]], 0]);
    expect(Array.from(fieldOf(last) as Uint32Array)).toEqual(values);
    expect(Array.from(fieldOf(middle) as Uint32Array)).toEqual(values);
    // A non-int (or a uint64) anywhere, also deep inside the part the fast loop reads, is seen.
    for (const at of [0, 3, 100, 199]) {
      const bad = values.slice();
      bad[at] = -5;
      expect(fieldOf(encode([0, [['Tag', bad, 'after']], 0]))).toEqual(bad);
      bad[at] = 2 ** 40;
      const wide = fieldOf(
        encode([0, [['Tag', bad.map((v, i) => (i === at ? BigInt(v) : v)), 'after']], 0], { useBigInt64: true }),
      );
      expect(wide).toBeInstanceOf(BigUint64Array);
      expect(Array.from(wide as BigUint64Array)).toEqual(bad.map(BigInt));
    }
  });

  it('into a BigUint64Array as soon as one element is a uint64 encoding, small values included', () => {
    const values = [5n, 0xffff_ffff_ffff_ffffn, 0x1_0000_0000n, 0n];
    const field = fieldOf(asField([...values, 7]));
    expect(field).toBeInstanceOf(BigUint64Array);
    expect(Array.from(field as BigUint64Array)).toEqual([...values, 7n]);
  });

  it('into a BigUint64Array when a uint64 comes after 32-bit values (read again as 64-bit)', () => {
    const field = fieldOf(asField([7, 0xffff_ffff, 2n ** 40n, 3]));
    expect(field).toBeInstanceOf(BigUint64Array);
    expect(Array.from(field as BigUint64Array)).toEqual([7n, 0xffff_ffffn, 2n ** 40n, 3n]);
  });

  it('not when an element is signed, a float, nil or anything else, nor when empty', () => {
    expect(fieldOf(asField([1, -1]))).toEqual([1, -1]);
    expect(fieldOf(asField([1, -(1n << 63n)]))).toEqual([1, -(1n << 63n)]);
    expect(fieldOf(asField([1, 1.5]))).toEqual([1, 1.5]);
    expect(fieldOf(asField([1, null]))).toEqual([1, null]);
    expect(fieldOf(asField([1, 'a']))).toEqual([1, 'a']);
    expect(fieldOf(asField([]))).toEqual([]);
  });

  it('only at depth 3 (map layout included), not the batch, the events or an event', () => {
    expect(readMsgpack(pack([1, 2]))).toEqual([1, 2]);
    expect(readMsgpack(pack([0, [1, 2]]))).toEqual([0, [1, 2]]);
    expect(readMsgpack(pack([0, [[1, 2]]]))).toEqual([0, [[1, 2]]]);
    const deeper = readMsgpack(pack([0, [['Tag', [[1, 2]]]]])) as unknown[][];
    expect((deeper[1][0] as unknown[])[1]).toEqual([[1, 2]]);
    const map = readMsgpack(pack({ ts: 0, events: [{ type: 'Tag', token_ids: [3, 4] }] })) as {
      events: { token_ids: unknown }[];
    };
    expect(map.events[0].token_ids).toEqual(Uint32Array.of(3, 4));
  });

  it('every list keeps its own values across many payloads (shared buffers are never overwritten), long lists too', () => {
    const kept: { field: unknown; values: number[] }[] = [];
    for (let i = 0; i < 3_000; i++) {
      const values = Array.from({ length: 1 + (i % 40) }, (_, j) => (i * 7919 + j * 104_729) % 200_000);
      kept.push({ field: fieldOf(asField(values)), values });
      // Lists given up half-way (a signed or a string element) give their space back without harming kept ones.
      if (i % 3 === 0) expect(fieldOf(asField([...values, -1]))).toEqual([...values, -1]);
      if (i % 5 === 0) expect(fieldOf(asField([2n ** 50n, ...values, 'x']))).toEqual([2n ** 50n, ...values, 'x']);
    }
    const long = Array.from({ length: 100_000 }, (_, j) => j);
    kept.push({ field: fieldOf(asField(long)), values: long });
    for (const { field, values } of kept) expect(Array.from(field as Uint32Array)).toEqual(values);
  });

  it('a long list that turns out not to be packable leaves no buffer of its size behind (later lists use the usual slab)', () => {
    const slabBytes = (fieldOf(asField([1, 2, 3])) as Uint32Array).buffer.byteLength;
    expect(slabBytes).toBe(4 * 65_536);
    for (const bad of [
      [2n ** 40n, ...new Array(100_000).fill(null)],
      [...new Array(100_000).fill(7), 2n ** 40n, null],
    ]) {
      const field = fieldOf(encode([0, [['Tag', bad]], 0], { useBigInt64: true })) as unknown[];
      expect([Array.isArray(field), field.length]).toEqual([true, bad.length]);
      expect((fieldOf(asField([4, 5])) as Uint32Array).buffer.byteLength).toBe(slabBytes);
    }
    const long = Array.from({ length: 100_000 }, (_, i) => i);
    const packed = fieldOf(asField(long)) as Uint32Array;
    expect([packed.length, packed[99_999], packed.buffer.byteLength]).toEqual([100_000, 99_999, 400_000]);
  });

  it('wireList turns a packed list back into the Array a reader off the hot path expects', () => {
    expect(wireList(Uint32Array.of(1, 2))).toEqual([1, 2]);
    expect(wireList(BigUint64Array.of(3n, 2n ** 60n))).toEqual([3, 2n ** 60n]);
    expect(wireList([1, 'a'])).toEqual([1, 'a']);
    expect(wireList('a')).toBeNull();
  });
});

describe('strings', () => {
  it('short ASCII strings that share a cache slot (same length and sampled bytes) are still told apart', () => {
    // Same length, first, middle and last byte: only the unsampled bytes differ.
    const words = ['abXdefg', 'abYdefg', 'abXdefg', 'abZdefg', 'abYdefg'];
    expect(words.map((w) => readMsgpack(pack(w)))).toEqual(words);
    const maps = readMsgpack(pack([{ kv_cache_spec_kind: 1 }, { kv_cache_spec_kinD: 2 }, { kv_cache_spec_kind: 3 }]));
    expect(maps).toEqual([{ kv_cache_spec_kind: 1 }, { kv_cache_spec_kinD: 2 }, { kv_cache_spec_kind: 3 }]);
  });

  it('the cache keeps its own copy of the bytes: a payload changed after reading cannot alias another string', () => {
    const payload = Buffer.from(pack('cache-me-01'));
    expect(readMsgpack(payload)).toBe('cache-me-01');
    payload.write('Z', 3); // the same buffer reused: only a byte the cache slot is not chosen by differs
    expect(readMsgpack(payload)).toBe('caZhe-me-01');
    expect(readMsgpack(Buffer.from(pack('cache-me-01')))).toBe('cache-me-01');
  });

  it('non-ASCII UTF-8 decodes exactly; an ASCII string read before does not stand in for it', () => {
    for (const text of ['héllo', 'hallo', 'héllo', '日本語', '😀x', '']) expect(readMsgpack(pack(text))).toBe(text);
  });
});

describe('errors', () => {
  const error = (bytes: number[]) => {
    try {
      readMsgpack(Uint8Array.from(bytes));
    } catch (err) {
      expect(err).toBeInstanceOf(MsgpackError);
      return (err as Error).message;
    }
    throw new Error('no error');
  };

  it('name the problem and where it is', () => {
    expect(error([])).toBe('Insufficient data: a value was expected at byte 0');
    expect(error([0x92, 0x01])).toBe('it declares 2 more values than the 1 bytes left can hold (at byte 1)');
    expect(error([0xa3, 0x61])).toBe('Insufficient data: 3 bytes expected at byte 1, 1 left');
    expect(error([0xcf, 0x00])).toBe('Insufficient data: 8 bytes expected at byte 1, 1 left');
    expect(error([0x01, 0x02])).toBe('Extra 1 of 2 byte(s) found at buffer[1]');
    expect(error([0xc1])).toBe('Unrecognized type byte: 0xc1');
    expect(error([0x91, 0xa2, 0xc3, 0x28])).toBe('it has a string that is not valid UTF-8 (at byte 1)');
    expect(error([0x81, 0x90, 0x01])).toBe('The type of key must be string or number but object');
    expect(error([0x81, 0xa9, ...Buffer.from('__proto__'), 0x01])).toBe('The key __proto__ is not allowed');
  });

  it('a timestamp of another size is refused as the reference refuses it; deep map keys are read or refused, never recursed without end', () => {
    expect(error([0xd5, 0xff, 0x00, 0x01])).toBe('Unrecognized data size for timestamp (expected 4, 8, or 12): 2');
    const deepMaps = new Array(200_000).fill(0x81);
    expect(error(deepMaps)).toBe('The type of key must be string or number but object');
    // A map at the deepest level read keeps its key; its value, one level deeper, is skipped (nil).
    const nested = [...new Array(64).fill(0x91), 0x81, 0xa1, 0x61, 0x01];
    let v = readMsgpack(Uint8Array.from(nested));
    for (let i = 0; i < 64; i++) v = (v as unknown[])[0];
    expect(v).toEqual({ a: null });
  });

  it('a failed read leaves the reader usable', () => {
    expect(() => readMsgpack(Uint8Array.from([0x93, 0x01]))).toThrow(MsgpackError);
    expect(readMsgpack(pack([0, [['Tag', [1, 2]]], 0]))).toEqual([0, [['Tag', Uint32Array.of(1, 2)]], 0]);
  });
});
