import { FieldError } from './errors.js';
import { expected } from './wire-values.js';
import { fieldPath } from './paths.js';

/**
 * Engine block hashes → uint64 (spec/vllm-kv-events.md §2 "Hash values"). Ints arrive as number (small) or bigint
 * (64-bit encodings); signed int64 (old vLLM, SGLang) is reinterpreted as two's complement. Bytes (sha256/xxhash)
 * become the big-endian uint64 of their last 8 bytes so that both encodings of one block are equal.
 * Nothing here goes through float64: a hash that is a non-integral or unsafe number is rejected.
 */

const MIN_I64 = -(1n << 63n);
const MAX_U64 = (1n << 64n) - 1n;
const MAX_HASH_BYTES = 32;

const scratch = new DataView(new ArrayBuffer(8));

function bytesToUint64(bytes: Uint8Array): bigint {
  const n = bytes.length;
  // Left-pad short digests with zeros: the 8-byte window ends at the last byte.
  for (let k = 0; k < 8; k++) {
    const src = n - 8 + k;
    scratch.setUint8(k, src >= 0 ? bytes[src] : 0);
  }
  return scratch.getBigUint64(0);
}

/** The uint64 of a hash value, or null when the value is not a valid hash. */
function uint64OrNull(value: unknown): bigint | null {
  if (typeof value === 'bigint') {
    return value >= MIN_I64 && value <= MAX_U64 ? BigInt.asUintN(64, value) : null;
  }
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) ? BigInt.asUintN(64, BigInt(value)) : null;
  }
  if (value instanceof Uint8Array) {
    return value.length >= 1 && value.length <= MAX_HASH_BYTES ? bytesToUint64(value) : null;
  }
  return null;
}

function hashProblem(value: unknown): string {
  if (value instanceof Uint8Array) return `expected 1..${MAX_HASH_BYTES} bytes, got ${value.length} bytes`;
  if (typeof value === 'bigint') return `expected int64 or uint64, got ${value}`;
  return expected('int or bytes', value);
}

/** Normalise one hash value to uint64; throws a FieldError (`bad_hash`) naming `field`. */
export function normaliseHash(value: unknown, field: string): bigint {
  const h = uint64OrNull(value);
  if (h === null) throw new FieldError('bad_hash', field, hashProblem(value));
  return h;
}

/** `events[ev].<name>`: nil → null, else a hash. */
export function readOptionalHash(value: unknown, ev: number, name: string): bigint | null {
  if (value === null || value === undefined) return null;
  const h = uint64OrNull(value);
  if (h === null) throw new FieldError('bad_hash', fieldPath(ev, name), hashProblem(value));
  return h;
}

/** `events[ev].<name>`: a list of hashes, packed into a BigUint64Array. */
export function readHashList(value: unknown, ev: number, name: string): BigUint64Array {
  // Packed by the reader (msgpack-reader.ts): unsigned ints, each already its uint64.
  if (value instanceof BigUint64Array) return value;
  if (value instanceof Uint32Array) return BigUint64Array.from(value, BigInt);
  if (!Array.isArray(value)) throw new FieldError('bad_field_type', fieldPath(ev, name), expected('array', value));
  const n = value.length;
  const out = new BigUint64Array(n);
  for (let j = 0; j < n; j++) {
    const v: unknown = value[j];
    // Fast path, the common vLLM case (uint64 encoding): a typed-array store wraps modulo 2^64 by itself, which is
    // exactly the two's complement reinterpretation for negative int64.
    if (typeof v === 'bigint' && v >= MIN_I64 && v <= MAX_U64) {
      out[j] = v;
      continue;
    }
    const h = uint64OrNull(v);
    if (h === null) throw new FieldError('bad_hash', fieldPath(ev, name, j), hashProblem(v));
    out[j] = h;
  }
  return out;
}
