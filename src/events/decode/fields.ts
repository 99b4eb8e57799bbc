import { FieldError } from './errors.js';
import { fieldPath } from './paths.js';
import { looksLikePairs, readTokenPairs } from './token-pairs.js';
import { asSafeInt, expected, type WireMap } from './wire-values.js';

/**
 * Typed readers for event fields. Each takes the raw wire value plus the pieces of its path and either returns
 * the typed value or throws a FieldError that rejects the event. `undefined` = field absent (short array or
 * omitted map key); for optional fields absent and nil both mean the default.
 */

/** Event bodies come as positional arrays (tag at 0) or tagged maps; one accessor for both keeps readers shared. */
export function pick(body: unknown[] | WireMap, isArray: boolean, index: number, key: string): unknown {
  return isArray ? (body as unknown[])[index] : (body as WireMap)[key];
}

/** Fields without a default in the engine's struct are always on the wire, possibly nil. */
export function requirePresent(value: unknown, ev: number, name: string): void {
  if (value === undefined) throw new FieldError('missing_field', fieldPath(ev, name), 'expected a value, got nothing');
}

export function readNonNegativeInt(value: unknown, ev: number, name: string): number {
  const n = asSafeInt(value);
  if (!(n >= 0)) throw new FieldError('bad_field_type', fieldPath(ev, name), expected('non-negative int', value));
  return n;
}

export function readOptionalInt(value: unknown, ev: number, name: string): number | null {
  if (value === null || value === undefined) return null;
  const n = asSafeInt(value);
  if (Number.isNaN(n)) throw new FieldError('bad_field_type', fieldPath(ev, name), expected('int or nil', value));
  return n;
}

export function readOptionalNonNegativeInt(value: unknown, ev: number, name: string): number | null {
  if (value === null || value === undefined) return null;
  const n = asSafeInt(value);
  if (!(n >= 0))
    throw new FieldError('bad_field_type', fieldPath(ev, name), expected('non-negative int or nil', value));
  return n;
}

export function readOptionalString(value: unknown, ev: number, name: string): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string')
    throw new FieldError('bad_field_type', fieldPath(ev, name), expected('string or nil', value));
  return value;
}

/** Storage tier, upper-cased so `cpu` and `CPU` are one tier; nil means the engine's GPU. */
export function readMedium(value: unknown, ev: number, name: string): string {
  if (value === null || value === undefined) return 'GPU';
  if (typeof value !== 'string')
    throw new FieldError('bad_field_type', fieldPath(ev, name), expected('string or nil', value));
  return value === 'GPU' ? value : value.toUpperCase();
}

/**
 * A BlockStored's `token_ids`: a plain list, or SGLang's speculative-decoding pairs (token-pairs.ts), which stand for
 * the first element of each pair plus a look-ahead token.
 */
export function readEventTokens(
  value: unknown,
  ev: number,
  name: string,
): { tokens: Uint32Array; lookahead: number | null } {
  if (Array.isArray(value) && looksLikePairs(value)) return readTokenPairs(value, ev, name);
  return { tokens: readTokenIds(value, ev, name), lookahead: null };
}

/** Token ids → Uint32Array; every element is checked because a bad one would silently corrupt request keys. */
export function readTokenIds(value: unknown, ev: number, name: string): Uint32Array {
  // The reader packs a list of unsigned ints (msgpack-reader.ts): uint32 lists are the token ids as they are.
  if (value instanceof Uint32Array) return value;
  if (value instanceof BigUint64Array) return narrowTokenIds(value, ev, name);
  if (!Array.isArray(value)) throw new FieldError('bad_field_type', fieldPath(ev, name), expected('array', value));
  const n = value.length;
  const out = new Uint32Array(n);
  for (let j = 0; j < n; j++) {
    const t: unknown = value[j];
    // `t >>> 0 === t` holds exactly for integers in [0, 2^32).
    if (typeof t === 'number' && t >>> 0 === t) {
      out[j] = t;
      continue;
    }
    const n64 = asSafeInt(t);
    if (!(n64 >= 0 && n64 <= 0xffffffff)) {
      throw new FieldError('bad_token_ids', fieldPath(ev, name, j), expected('uint32 token id', t));
    }
    out[j] = n64;
  }
  return out;
}

/** A packed list with 64-bit elements: token ids only if each fits 32 bits (a uint64 encoding may hold a small value). */
function narrowTokenIds(value: BigUint64Array, ev: number, name: string): Uint32Array {
  const out = new Uint32Array(value.length);
  for (let j = 0; j < value.length; j++) {
    const t = value[j];
    if (t > 0xffffffffn) throw new FieldError('bad_token_ids', fieldPath(ev, name, j), expected('uint32 token id', t));
    out[j] = Number(t);
  }
  return out;
}
