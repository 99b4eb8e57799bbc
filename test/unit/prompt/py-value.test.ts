import { describe, expect, it } from 'vitest';
import { parsePyObject, pyFromJs } from '../../../src/prompt/index.js';
import { ByteLru } from '../../../src/prompt/byte-lru.js';

/** mm_processor_kwargs as Python's json.loads types them (vLLM hashes ints as int64, floats as float64). */
describe('parsePyObject', () => {
  it('keeps key order as written (integer-like keys too) and tells ints from floats by the literal', () => {
    expect(parsePyObject('{"2025": 1, "b": 2.0, "10": 1e3, "n": -0, "s": "\\u00e9", "l": [true, null]}', 'k')).toEqual([
      ['2025', { t: 'int', v: 1n }],
      ['b', { t: 'float', v: 2 }],
      ['10', { t: 'float', v: 1000 }],
      ['n', { t: 'int', v: 0n }],
      ['s', { t: 'str', v: 'é' }],
      ['l', { t: 'list', v: [{ t: 'bool', v: true }, { t: 'none' }] }],
    ]);
  });
  it('a repeated key keeps its first position and its last value (a Python dict)', () => {
    expect(parsePyObject('{"a": 1, "b": 2, "a": 3}', 'k')).toEqual([
      ['a', { t: 'int', v: 3n }],
      ['b', { t: 'int', v: 2n }],
    ]);
  });
  it('ints beyond int64 are exact up to the bound and refused past it', () => {
    expect(parsePyObject('{"x": 9223372036854775807}', 'k')).toEqual([['x', { t: 'int', v: 2n ** 63n - 1n }]]);
    expect(() => parsePyObject('{"x": 9223372036854775808}', 'k')).toThrow(/k: .*int64/);
  });
  it('bad input names the field', () => {
    for (const text of [
      '[1]',
      '{"a": }',
      '{"a": 1} x',
      '{a: 1}',
      '{"a": "\\q"}',
      `${'{"a":'.repeat(40)}1${'}'.repeat(40)}`,
    ]) {
      expect(() => parsePyObject(text, 'mm_processor_kwargs'), text).toThrow(/^mm_processor_kwargs: /);
    }
  });
  it('a JS object: integral numbers become ints (2.0 is lost, which is why the API passes the text)', () => {
    expect(pyFromJs({ a: 2.0, b: 2.5 }, 'k')).toEqual({
      t: 'dict',
      v: [
        ['a', { t: 'int', v: 2n }],
        ['b', { t: 'float', v: 2.5 }],
      ],
    });
  });
});

describe('ByteLru', () => {
  it('evicts the least recently used entries past the entry or byte bound; an oversize value is not stored', () => {
    const lru = new ByteLru(2, 10);
    lru.set('a', new Uint8Array(4));
    lru.set('b', new Uint8Array(4));
    lru.get('a');
    lru.set('c', new Uint8Array(4)); // entry bound: b (least recent) goes
    expect([lru.get('a') !== undefined, lru.get('b') !== undefined, lru.get('c') !== undefined]).toEqual([
      true,
      false,
      true,
    ]);
    lru.set('d', new Uint8Array(6)); // byte bound: 4 + 4 + 6 > 10 → a goes, then... c+d = 10 fits
    expect([lru.size, lru.bytes]).toEqual([2, 10]);
    lru.set('e', new Uint8Array(11));
    expect([lru.size, lru.bytes, lru.get('e')]).toEqual([2, 10, undefined]);
  });
});
