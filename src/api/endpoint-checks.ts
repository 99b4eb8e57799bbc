/** The checks of AddEndpoint's addresses and store bound (docs/api.md, "AddEndpoint"; docs/security.md). */
import { parseTcpAddress } from '../common/index.js';
import { ApiError, invalid } from './errors.js';
import type { AddEndpointRequest } from './fleet.js';
import { checkCandidateShaped } from './validate.js';

export function checkZmqAddress(field: string, value: string, allowHostnames: boolean): string {
  if (!parseTcpAddress(value).ok) throw invalid(field, `"${value}" is not tcp://<host>:<port>`);
  if (!allowHostnames) checkCandidateShaped(field, value.slice('tcp://'.length), false);
  return value;
}

export function checkHttpUrl(field: string, value: string, allowHostnames: boolean): string {
  const m = value.length > 300 ? null : /^https?:\/\/([^\s/?#@]+)(\/[^\s?#]*)?$/.exec(value);
  if (!m) throw invalid(field, `"${value.slice(0, 100)}" is not http(s)://<host>:<port>`);
  // The service would GET this URL: without an admin token, the same IP-literal rule as zmq_address (docs/security.md).
  if (!allowHostnames) checkCandidateShaped(field, m[1], false);
  return value;
}

/** AddEndpoint's optional store bound: max_blocks 0..10^9 and ttl_seconds 0..30 days (0 = the service default). */
export function checkStoreBound(
  maxBlocks: string | undefined,
  ttlSeconds: number | undefined,
): AddEndpointRequest['storeBound'] {
  const max = maxBlocks === undefined || maxBlocks === '' ? 0 : Number(maxBlocks);
  if (!Number.isSafeInteger(max) || max < 0 || max > 1e9)
    throw new ApiError('invalid_argument', 'max_blocks', `max_blocks must be 0..1000000000, got ${maxBlocks}`);
  const ttl = ttlSeconds ?? 0;
  if (!Number.isFinite(ttl) || ttl < 0 || ttl > 30 * 86400)
    throw new ApiError('invalid_argument', 'ttl_seconds', `ttl_seconds must be 0..2592000, got ${ttlSeconds}`);
  if (max === 0 && ttl === 0) return null;
  return { maxBlocks: max > 0 ? max : null, ttlMs: ttl > 0 ? Math.round(ttl * 1000) : null };
}
