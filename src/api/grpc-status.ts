import { status } from '@grpc/grpc-js';
import { IndexerError } from '../common/index.js';
import type { Log } from '../common/index.js';
import type { ApiErrorCode } from './errors.js';

/** Every module's errors share one base (src/common/errors.ts): its code is the gRPC status. */
export const STATUS_OF: Record<ApiErrorCode, status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  not_found: status.NOT_FOUND,
  resource_exhausted: status.RESOURCE_EXHAUSTED,
  unavailable: status.UNAVAILABLE,
  deadline_exceeded: status.DEADLINE_EXCEEDED,
  failed_precondition: status.FAILED_PRECONDITION,
  internal: status.INTERNAL,
};

/** A call that already failed with a gRPC status elsewhere (the index thread): passed on as it is. */
export class CallStatus extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
  ) {
    super(details);
    this.name = 'CallStatus';
  }
}

/**
 * The status of a failed call, for grpc-server.ts and the fast Score path (fast-score.ts) alike. The index backend
 * (Redis) down or slow is `unavailable`, a condition to retry, not a server bug (GetStats, ListEndpoints, …); any other
 * error is a bug: logged, and answered INTERNAL without its text.
 */
export function toStatus(err: unknown, path: string, log: Pick<Log, 'error'>): { code: status; details: string } {
  if (err instanceof IndexerError) return { code: STATUS_OF[err.code], details: err.message };
  if (err instanceof CallStatus) return { code: err.code, details: err.details };
  log.error({ err, path }, 'unexpected error in gRPC handler');
  return { code: status.INTERNAL, details: 'internal error (logged by the server)' };
}

/**
 * `grpc-message` as the gRPC HTTP/2 protocol spec requires (doc/PROTOCOL-HTTP2.md, "Status-Message"): the UTF-8 bytes,
 * with every byte outside 0x20–0x7E and '%' itself written as %XX. Clients percent-decode it.
 */
export function percentEncode(message: string): string {
  if (!/[^\x20-\x24\x26-\x7e]/.test(message)) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * A plain gRPC request a lean path serves itself: POST, a gRPC content type (not gRPC-Web), no compression declared.
 * Anything else goes to grpc-js, which answers it as it always did (fast-score.ts, h2/lean-server.ts).
 */
export function plainGrpcRequest(method: unknown, contentType: unknown, encoding: unknown): boolean {
  return (
    method === 'POST' &&
    typeof contentType === 'string' &&
    contentType.startsWith('application/grpc') &&
    !contentType.startsWith('application/grpc-web') &&
    (encoding === undefined || encoding === 'identity')
  );
}

/** `grpc-timeout` (1–8 digits and a unit H M S m u n) in ms, or null when malformed (doc/PROTOCOL-HTTP2.md). */
export function parseGrpcTimeout(value: string): number | null {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return null;
  return Number(m[1]) * UNIT_MS[m[2]];
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };
