/** Edge validation for the index API: every check runs before any change, and says what was wrong. */

import type { LookupOptions } from '../types.js';

export function checkEndpoint(endpoint: unknown): asserts endpoint is string {
  if (typeof endpoint !== 'string' || endpoint.length === 0) {
    throw new TypeError(`endpoint must be a non-empty string, got ${describe(endpoint)}`);
  }
}

export function checkTier(tier: unknown): asserts tier is string {
  if (typeof tier !== 'string') throw new TypeError(`tier must be a string, got ${describe(tier)}`);
}

export function checkKeys(keys: unknown): asserts keys is BigUint64Array {
  if (!(keys instanceof BigUint64Array)) throw new TypeError(`keys must be a BigUint64Array, got ${describe(keys)}`);
}

export function checkTtl(ttlMs: unknown): asserts ttlMs is number {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`ttlMs must be a positive finite number, got ${describe(ttlMs)}`);
  }
}

export function checkLookupOptions(options: LookupOptions | undefined): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`lookup options must be an object, got ${describe(options)}`);
  }
  const { candidates, maxBlocks, now } = options;
  if (candidates !== undefined) {
    if (!Array.isArray(candidates)) throw new TypeError(`candidates must be an array of strings`);
    for (const c of candidates) {
      if (typeof c !== 'string') throw new TypeError(`candidates must be strings, got ${describe(c)}`);
    }
  }
  if (maxBlocks !== undefined && !(Number.isInteger(maxBlocks) && maxBlocks >= 0)) {
    throw new RangeError(`maxBlocks must be a non-negative integer, got ${describe(maxBlocks)}`);
  }
  if (now !== undefined && !(typeof now === 'number' && Number.isFinite(now))) {
    throw new RangeError(`now must be a finite number of ms, got ${describe(now)}`);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  if (typeof v === 'string') return JSON.stringify(v);
  return `${typeof v} ${String(v)}`;
}
