import { invalid } from './errors.js';
import { parsePyJson, PyFloat, PyInt, PyJsonError, type PyValue as PyJsonValue } from './py-json.js';

/**
 * A JSON value as Python's `json.loads` sees it, for vLLM's multimodal hash (spec/vllm-mm-hash.md §3, §5): object key
 * order is kept as written (JS objects move integer-like keys first), and a number is an int unless its literal has a
 * fraction or an exponent (`2.0` stays a float; JSON.parse would make it 2). The hash serializes ints as int64 and
 * floats as float64, so the difference changes the identifier. Parsed by py-json.ts (the chat path's reader) and
 * narrowed here to what the hash accepts: ints within int64, finite floats, bounded nesting.
 */
export type KwargValue =
  | { t: 'str'; v: string }
  | { t: 'int'; v: bigint }
  | { t: 'float'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'none' }
  | { t: 'list'; v: KwargValue[] }
  | { t: 'dict'; v: [string, KwargValue][] };

const MAX_DEPTH = 32;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Parses a JSON object text (with parsePyJson, the reader the chat path uses) into ordered Python-typed entries; errors name `field`. */
export function parsePyObject(text: string, field: string): [string, KwargValue][] {
  let parsed: PyJsonValue;
  try {
    parsed = parsePyJson(text);
  } catch (err) {
    if (err instanceof PyJsonError) throw invalid(field, `not valid JSON: ${err.message}`);
    throw err;
  }
  const value = fromPyJson(parsed, field, 0);
  if (value.t !== 'dict') throw invalid(field, 'must be a JSON object');
  return value.v;
}

function fromPyJson(value: PyJsonValue, field: string, depth: number): KwargValue {
  if (depth > MAX_DEPTH) throw invalid(field, `nested deeper than ${MAX_DEPTH} levels`);
  if (value === null) return { t: 'none' };
  if (typeof value === 'string') return { t: 'str', v: value };
  if (typeof value === 'boolean') return { t: 'bool', v: value };
  if (value instanceof PyInt) {
    const v = BigInt(value.text);
    // numpy turns ints outside int64 into an object array; vLLM's hasher would not produce int64 bytes for them.
    if (v < INT64_MIN || v > INT64_MAX) throw invalid(field, 'integer outside the int64 range');
    return { t: 'int', v };
  }
  if (value instanceof PyFloat) {
    if (!Number.isFinite(value.value)) throw invalid(field, 'must be a finite number');
    return { t: 'float', v: value.value };
  }
  if (Array.isArray(value)) return { t: 'list', v: value.map((x) => fromPyJson(x, field, depth + 1)) };
  return { t: 'dict', v: [...value].map(([k, x]) => [k, fromPyJson(x, field, depth + 1)]) };
}

/**
 * A JS value (a request object already parsed by JSON.parse) as Python would type it: integral numbers are ints.
 * Callers that have the request text should use parsePyObject, which keeps `2.0` a float.
 */
export function pyFromJs(value: unknown, field: string, depth = 0): KwargValue {
  if (depth > MAX_DEPTH) throw invalid(field, `nested deeper than ${MAX_DEPTH} levels`);
  if (value === null) return { t: 'none' };
  if (typeof value === 'string') return { t: 'str', v: value };
  if (typeof value === 'boolean') return { t: 'bool', v: value };
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalid(field, 'must be a finite number');
    return Number.isSafeInteger(value) ? { t: 'int', v: BigInt(value) } : { t: 'float', v: value };
  }
  if (Array.isArray(value)) return { t: 'list', v: value.map((x, i) => pyFromJs(x, `${field}[${i}]`, depth + 1)) };
  if (typeof value === 'object') {
    return {
      t: 'dict',
      v: Object.entries(value as Record<string, unknown>).map(([k, x]) => [k, pyFromJs(x, `${field}.${k}`, depth + 1)]),
    };
  }
  throw invalid(field, `unsupported value of type ${typeof value}`);
}
