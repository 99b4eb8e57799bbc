import { status } from '@grpc/grpc-js';
import { MAX_TIMER_MS } from './connection-limits.js';
import { parseGrpcTimeout } from './grpc-status.js';

/** A status a call fails with before its operation runs (grpc-js's words, so both lean paths answer as it does). */
export interface EarlyFailure {
  code: number;
  details: string;
}

/**
 * A call's deadline from its `grpc-timeout` header: ms since the epoch (Infinity for none) and the delay of the timer
 * that fails it, or null when no timer is kept. Past a timer's range (grpc-go sends a 30-day deadline as `2592000S`)
 * no timer: a longer setTimeout would fire after 1 ms, and the call's `aborted` still compares against the deadline.
 */
export function callDeadline(timeout: unknown): { deadlineMs: number; timerMs: number | null } | EarlyFailure {
  if (typeof timeout !== 'string') return { deadlineMs: Infinity, timerMs: null };
  const ms = parseGrpcTimeout(timeout);
  if (ms === null) return { code: status.INTERNAL, details: `Invalid grpc-timeout value "${timeout}"` };
  return { deadlineMs: Date.now() + ms, timerMs: ms <= MAX_TIMER_MS ? ms : null };
}

/**
 * The one request message of a unary call as its DATA arrives, by grpc-js's rules: the 5-byte prefix (possibly split
 * over frames), no compressed flag, the size bound, exactly one message. Chunks are copied as they arrive when they
 * are views of a buffer that is reused (the lean server's socket reads), so that memory follows the bytes received,
 * not the length a prefix announces.
 */
export class UnaryRequest {
  private parts: Buffer[] = [];
  private head: Buffer | null = null;
  /** The announced message length, once the prefix has arrived. */
  private length = -1;
  private received = 0;

  constructor(
    private readonly path: string,
    private readonly maxMessageBytes: number,
    private readonly copy: boolean,
  ) {}

  /** Takes a chunk of DATA; a failure means the call fails with it (nothing more is read). */
  push(chunk: Buffer): EarlyFailure | null {
    let at = 0;
    if (this.length < 0) {
      const need = 5 - (this.head?.length ?? 0);
      const part = chunk.subarray(0, need);
      this.head = this.head ? Buffer.concat([this.head, part]) : Buffer.from(part);
      if (this.head.length < 5) return null;
      at = need;
      if (this.head[0] !== 0)
        return {
          code: status.UNIMPLEMENTED,
          details: 'Received a compressed message but no grpc-encoding was declared',
        };
      const length = this.head.readUInt32BE(1);
      if (length > this.maxMessageBytes)
        return {
          code: status.RESOURCE_EXHAUSTED,
          details: `Received message larger than max (${length} vs ${this.maxMessageBytes})`,
        };
      this.length = length;
    }
    const rest = chunk.length - at;
    if (this.received + rest > this.length)
      return { code: status.UNIMPLEMENTED, details: `Received a second request message for unary method ${this.path}` };
    if (rest > 0) {
      const body = at === 0 ? chunk : chunk.subarray(at);
      this.parts.push(this.copy ? Buffer.from(body) : body);
    }
    this.received += rest;
    return null;
  }

  /** The message once the client ended its half of the stream, or the failure when it is incomplete. */
  message(): Buffer | EarlyFailure {
    if (this.length < 0 || this.received !== this.length)
      return {
        code: status.UNIMPLEMENTED,
        details: `Received no complete request message for unary method ${this.path}`,
      };
    const message = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.length);
    this.clear();
    return message;
  }

  /** Drops what was received (the call is over). */
  clear(): void {
    this.parts = [];
    this.head = null;
  }
}
