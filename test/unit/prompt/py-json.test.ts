import { describe, expect, it } from 'vitest';
import {
  asRecord,
  MAX_JSON_DEPTH,
  nestedDeeperThan,
  parsePyJson,
  PyFloat,
  pyFloatRepr,
  PyInt,
  PyJsonError,
  stringifyPyJson,
  toPlain,
} from '../../../src/prompt/py-json.js';

/** Python's json.loads/json.dumps behaviour (the values below are what CPython 3.11 prints for the same input). */
describe('parsePyJson: JSON as Python reads it', () => {
  it('keeps key order, integer-like keys included (JSON.parse moves them first)', () => {
    const v = parsePyJson('{"2025": 1, "b": 2, "10": 3, "a": {"9": 0, "1": 1}}') as Map<string, unknown>;
    expect([...v.keys()]).toEqual(['2025', 'b', '10', 'a']);
    expect([...(v.get('a') as Map<string, unknown>).keys()]).toEqual(['9', '1']);
    expect(Object.keys(JSON.parse('{"2025": 1, "b": 2, "10": 3}'))).toEqual(['10', '2025', 'b']);
  });

  it('tells ints from floats and keeps every digit of an int', () => {
    const v = parsePyJson('[2.0, 2, 12345678901234567890, -0, -0.0, 1E+2, 1.50]') as unknown[];
    expect(v.map((x) => x!.constructor.name)).toEqual([
      'PyFloat',
      'PyInt',
      'PyInt',
      'PyInt',
      'PyFloat',
      'PyFloat',
      'PyFloat',
    ]);
    expect((v[2] as PyInt).text).toBe('12345678901234567890');
    expect((v[3] as PyInt).text).toBe('0'); // json.loads("-0") == 0
    expect(stringifyPyJson(v)).toBe('[2.0,2,12345678901234567890,0,-0.0,100.0,1.5]');
  });

  it('a duplicate key keeps its first position and its last value (dict assignment)', () => {
    expect(stringifyPyJson(parsePyJson('{"a": 1, "b": 2, "a": 3}'))).toBe('{"a":3,"b":2}');
  });

  it("accepts Python's NaN, Infinity and -Infinity", () => {
    const v = parsePyJson('[NaN, Infinity, -Infinity]') as PyFloat[];
    expect(v.map((x) => x.value)).toEqual([NaN, Infinity, -Infinity]);
    expect(stringifyPyJson(v)).toBe('[NaN,Infinity,-Infinity]');
  });

  it('decodes escapes, surrogate pairs and non-ASCII text', () => {
    expect(parsePyJson('"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/ é"')).toBe('é😀\n\t"\\/ é');
  });

  it.each([
    ['', 'unexpected end of JSON at character 0'],
    ['{"a": 1,}', 'expecting a property name in double quotes at character 8'],
    ['[1 2]', "expecting ',' delimiter at character 3"],
    ['{"a" 1}', "expecting ':' delimiter at character 5"],
    ['"\u0001"', 'invalid control character in string at character 1'],
    ['"\\x"', 'invalid escape at character 1'],
    ['01', 'extra data after the JSON value at character 1'],
    ['[1] x', 'extra data after the JSON value at character 4'],
    ['"abc', 'unterminated string at character 4'],
    ['nul', 'expecting a JSON value at character 0'],
  ])('refuses %j: %s', (text, message) => {
    expect(() => parsePyJson(text)).toThrow(new PyJsonError(message));
  });

  it('refuses nesting deeper than 512 levels without overflowing the stack', () => {
    expect(() => parsePyJson('['.repeat(100_000))).toThrow(/nested deeper than 512 levels/);
    expect(toPlain(parsePyJson(`${'['.repeat(500)}${']'.repeat(500)}`))).toBeInstanceOf(Array);
  });

  it('nestedDeeperThan bounds objects as parsePyJson bounds text, to the level, without recursion; parsed Maps are not walked again', () => {
    // n arrays nested, the innermost holding `inner`: the same verdict from the parser and from the object walk.
    const text = (n: number, inner: string) => `${'['.repeat(n)}${inner}${']'.repeat(n)}`;
    const verdicts = [];
    for (const n of [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, MAX_JSON_DEPTH + 2]) {
      for (const inner of ['', '1', '{"k": {}}']) {
        let parsed = true;
        try {
          parsePyJson(text(n, inner));
        } catch {
          parsed = false;
        }
        const value = JSON.parse(text(n, inner)) as unknown;
        verdicts.push([n - MAX_JSON_DEPTH, inner, parsed, nestedDeeperThan(value, MAX_JSON_DEPTH)]);
      }
    }
    expect(verdicts).toEqual([
      [0, '', true, false],
      [0, '1', true, false],
      [0, '{"k": {}}', false, true],
      [1, '', true, false],
      [1, '1', false, true],
      [1, '{"k": {}}', false, true],
      [2, '', false, true],
      [2, '1', false, true],
      [2, '{"k": {}}', false, true],
    ]);
    // Objects and arrays alike; 100,000 levels do not overflow the stack.
    let deep: unknown = 'x';
    for (let i = 0; i < 100_000; i++) deep = i % 2 ? { k: deep } : [deep];
    expect(nestedDeeperThan(deep, MAX_JSON_DEPTH)).toBe(true);
    expect(nestedDeeperThan({ a: [1, { b: { c: null } }] }, 4)).toBe(false); // null at depth 4
    expect(nestedDeeperThan({ a: [1, { b: { c: null } }] }, 3)).toBe(true);
    // A Map is parsePyJson's output, bounded when it was parsed: not walked again (the gRPC front end's chat fields).
    const parsed = parsePyJson(`${'{"k": '.repeat(MAX_JSON_DEPTH)}1${'}'.repeat(MAX_JSON_DEPTH)}`);
    expect(nestedDeeperThan({ a: [parsed] }, MAX_JSON_DEPTH)).toBe(false);
    expect(nestedDeeperThan(new Map([['k', deep]]), MAX_JSON_DEPTH)).toBe(false);
    // The Map counts as a value at depth 3, its members are not looked at.
    expect(nestedDeeperThan({ a: [{ b: new Map([['c', { d: [[[1]]] }]]) }] }, 3)).toBe(false);
    expect(nestedDeeperThan({ a: [{ b: { m: new Map() } }] }, 2)).toBe(true); // a plain object's member at depth 3
    expect([nestedDeeperThan('s', 0), nestedDeeperThan(null, 0), nestedDeeperThan([], 0)]).toEqual([
      false,
      false,
      false,
    ]);
  });

  it('asRecord views a Map or a plain object; toPlain gives ordinary values back', () => {
    expect(asRecord(parsePyJson('{"x": 1.5}'))).toEqual({ x: new PyFloat(1.5) });
    expect(asRecord({ y: 1 })).toEqual({ y: 1 });
    expect(asRecord([1])).toBeNull();
    expect(asRecord(new PyInt('1'))).toBeNull();
    expect(toPlain(parsePyJson('{"a": [1, 2.5, {"b": null}]}'))).toEqual({ a: [1, 2.5, { b: null }] });
  });
});

describe("pyFloatRepr: Python's repr(float)", () => {
  it.each([
    [2, '2.0'],
    [0.1, '0.1'],
    [1e-4, '0.0001'],
    [1e-5, '1e-05'],
    [1.5e-7, '1.5e-07'],
    [1e15, '1000000000000000.0'],
    [1e16, '1e+16'],
    [1.2345678901234568e17, '1.2345678901234568e+17'],
    [1e21, '1e+21'],
    [1.7976931348623157e308, '1.7976931348623157e+308'],
    [5e-324, '5e-324'],
    [-0, '-0.0'],
    [-2.5, '-2.5'],
    [Infinity, 'inf'],
    [NaN, 'nan'],
  ])('%d → %s', (x, text) => {
    expect(pyFloatRepr(x)).toBe(text);
  });
});
