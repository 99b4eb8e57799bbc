import { parseKey } from '../keys/index.js';
import { exhausted, invalid } from './errors.js';
import type { MultimodalItemMsg } from './messages.js';

/** `<host>:<port>`, optionally `@dp<rank>` (data-parallel rank > 0), as the transport names endpoints. */
const ENDPOINT_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):\d{1,5}(@dp[1-9]\d{0,4})?$/;

export function checkEndpoint(field: string, value: string): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(field, 'is required');
  if (value.length > 300 || !ENDPOINT_RE.test(value)) throw invalid(field, `"${truncate(value)}" is not <host>:<port>`);
  return value;
}

export function checkCandidates(values: readonly string[], max: number): string[] | undefined {
  if (values.length === 0) return undefined;
  if (values.length > max) throw exhausted('candidates', `${values.length} candidates, at most ${max}`);
  return values.map((v, i) => checkEndpoint(`candidates[${i}]`, v));
}

export function checkModel(value: string, field = 'model'): string {
  if (typeof value !== 'string' || value.length === 0) throw invalid(field, 'is required');
  if (value.length > 512) throw invalid(field, 'is longer than 512 characters');
  return checkUtf8(field, value);
}

/**
 * Protobuf decoding replaces invalid UTF-8 with U+FFFD instead of failing; a name that went through that would
 * silently hash to a different chain root, so it is rejected.
 */
export function checkUtf8(field: string, value: string): string {
  if (value.includes('\uFFFD')) throw invalid(field, 'is not valid UTF-8');
  return value;
}

export function parseBlockKeys(field: string, values: readonly string[], max: number): BigUint64Array {
  if (values.length > max) throw exhausted(field, `${values.length} block keys, at most ${max}`);
  const keys = new BigUint64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    try {
      keys[i] = parseKey(values[i]);
    } catch (err) {
      throw invalid(`${field}[${i}]`, (err as Error).message);
    }
  }
  return keys;
}

export function checkTokens(field: string, values: readonly number[], max: number): Uint32Array {
  if (values.length > max) throw exhausted(field, `${values.length} tokens, at most ${max}`);
  // proto-loader already guarantees uint32 values; the copy makes the hot path's typed array.
  return Uint32Array.from(values);
}

export function checkItems(field: string, items: readonly MultimodalItemMsg[], tokenCount: number) {
  return items.map((item, i) => {
    const at = `${field}[${i}]`;
    if (!item.identifier) throw invalid(`${at}.identifier`, 'is required');
    if (item.length === 0) throw invalid(`${at}.length`, 'must be > 0');
    if (item.offset + item.length > tokenCount) {
      throw invalid(at, `range [${item.offset}, ${item.offset + item.length}) is past the ${tokenCount} tokens`);
    }
    return { identifier: item.identifier, offset: item.offset, length: item.length };
  });
}

export function checkTierWeights(weights: Record<string, number>): Record<string, number> | undefined {
  const entries = Object.entries(weights);
  if (entries.length === 0) return undefined;
  for (const [tier, w] of entries) {
    if (!Number.isFinite(w) || w < 0) throw invalid(`tier_weights[${tier}]`, `must be a finite number ≥ 0, got ${w}`);
  }
  return weights;
}

export function parseJsonField(field: string, text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(field, `is not valid JSON: ${(err as Error).message}`);
  }
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
