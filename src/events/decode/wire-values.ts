/**
 * Facts about the values msgpack-reader.ts produces: nil → null, 8–32-bit ints and floats → number, 64-bit ints →
 * bigint, bin → Uint8Array, map → plain object, ext → WireExt or Date, and lists of unsigned ints in event fields →
 * Uint32Array or BigUint64Array. `undefined` never comes off the wire, so the decoder uses it to mean "field absent".
 */

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

export type WireMap = Record<string, unknown>;

/** A msgpack map. Bytes, timestamps and ext values are objects too, but never with the plain object prototype. */
export function isWireMap(value: unknown): value is WireMap {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.getPrototypeOf(value) === Object.prototype
  );
}

/**
 * The value as a JS integer, or NaN when it is not an int (or an int beyond ±2^53, which a number cannot hold).
 * NaN instead of null/exceptions keeps the hot path free of allocations and try/catch.
 */
export function asSafeInt(value: unknown): number {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : NaN;
  if (typeof value === 'bigint') return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : NaN;
  return NaN;
}

/** Short wire-type name for messages; numbers carry their value since "got int" would not say what was wrong. */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
      return 'nothing';
    case 'boolean':
      return 'bool';
    case 'number':
      return Number.isSafeInteger(value) ? `int (${value})` : `float (${value})`;
    case 'bigint':
      return `int (${value})`;
    case 'string':
      return 'string';
    case 'object':
      if (value === null) return 'nil';
      if (Array.isArray(value) || value instanceof Uint32Array || value instanceof BigUint64Array) return 'array';
      if (value instanceof Uint8Array) return `bytes (${value.length})`;
      if (value instanceof Date) return 'timestamp';
      return isWireMap(value) ? 'map' : 'ext';
    default:
      return typeof value;
  }
}

/** The message of every type error: what was expected, what was found. */
export function expected(what: string, value: unknown): string {
  return `expected ${what}, got ${describe(value)}`;
}
