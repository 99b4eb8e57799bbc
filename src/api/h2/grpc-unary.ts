/**
 * A unary gRPC call on the lean HTTP/2 server (gRPC over HTTP/2: doc/PROTOCOL-HTTP2.md of grpc/grpc). The request is
 * one length-prefixed message (1 byte compressed flag, 4 bytes big-endian length); the answer is response headers, one
 * message and trailers with `grpc-status`, or trailers only when the call fails. It keeps the rules grpc-js applies
 * and fast-score.ts kept before it: `grpc-timeout` sets a deadline (DEADLINE_EXCEEDED 'Deadline exceeded'; malformed:
 * INTERNAL), a message over the bound is RESOURCE_EXHAUSTED, none or a second one is UNIMPLEMENTED, the compressed
 * flag without a declared encoding is UNIMPLEMENTED, a reset sets the cancellation the operation reads. What is not a
 * plain unary call of a served path (other methods, compression declared, streaming RPCs, health, reflection) never
 * reaches here: lean-server.ts relays it to grpc-js.
 */
import { status } from '@grpc/grpc-js';
import { literalWithoutIndexing } from './hpack.js';
import type { H2Connection } from './connection.js';
import { NO_ERROR } from './frames.js';
import type { H2Stream, StreamSink } from './stream.js';
import { MAX_TIMER_MS } from '../connection-limits.js';
import { parseGrpcTimeout, percentEncode } from '../grpc-status.js';
import type { Cancellation } from '../prompt-frontend.js';
import { UndecodableRequest } from '../wire/undecodable.js';

/** One served path: its operation and codec (identity for bytes handed to the index thread). */
export interface UnaryMethod {
  path: string;
  decode(bytes: Buffer): unknown;
  encode(message: unknown): Buffer;
  run(request: unknown, cancellation: Cancellation, caller: string): Promise<unknown>;
}

export interface UnaryDeps {
  maxMessageBytes: number;
  /** An error thrown by an operation as a status (grpc-status.ts toStatus; logs unexpected errors). */
  toStatus(err: unknown, path: string): { code: number; details: string };
}

/** `:status 200` is static table entry 8 (RFC 7541 Appendix A); content-type as grpc-js sends it. */
const STATUS_200 = Buffer.from([0x88]);
const CONTENT_TYPE = literalWithoutIndexing('content-type', 'application/grpc+proto');
export const RESPONSE_HEADERS = Buffer.concat([STATUS_200, CONTENT_TYPE]);
const OK_TRAILERS = Buffer.concat([
  literalWithoutIndexing('grpc-status', '0'),
  literalWithoutIndexing('grpc-message', 'OK'),
]);

/** Trailers-only answer: headers and status in one block with END_STREAM. */
export function trailersOnly(code: number, details: string): Buffer {
  return Buffer.concat([
    RESPONSE_HEADERS,
    literalWithoutIndexing('grpc-status', String(code)),
    // Bounded before encoding (a cut after it could split a %XX escape); a long block goes out with CONTINUATION.
    literalWithoutIndexing('grpc-message', percentEncode(details.slice(0, 4_096))),
  ]);
}

/** Fails `stream` with a status; a request still arriving is cut short with RST_STREAM NO_ERROR (RFC 9113 §8.1). */
export function failStream(conn: H2Connection, stream: H2Stream, code: number, details: string): void {
  conn.sendHeaders(stream, trailersOnly(code, details), true);
  if (!stream.remoteClosed) conn.reset(stream, NO_ERROR);
}

function onDeadline(call: UnaryCall): void {
  call.fail(status.DEADLINE_EXCEEDED, 'Deadline exceeded');
}

/** One call: collect the message, run the operation, answer once. It is its own cancellation and its stream's sink. */
export class UnaryCall implements Cancellation, StreamSink {
  private parts: Buffer[] = [];
  private head: Buffer | null = null;
  /** The announced message length, once the prefix has arrived. */
  private length = -1;
  private received = 0;
  deadlineMs = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    private readonly conn: H2Connection,
    private readonly stream: H2Stream,
    private readonly method: UnaryMethod,
    private readonly deps: UnaryDeps,
  ) {}

  get aborted(): boolean {
    return this.done || Date.now() > this.deadlineMs;
  }

  start(): void {
    this.stream.sink = this;
    const timeout = this.stream.header('grpc-timeout');
    if (timeout !== undefined) {
      const ms = parseGrpcTimeout(timeout);
      if (ms === null) return this.fail(status.INTERNAL, `Invalid grpc-timeout value "${timeout}"`);
      this.deadlineMs = Date.now() + ms;
      // Past a timer's range (grpc-go sends a 30-day deadline as 2592000S) no timer: `aborted` still compares.
      if (ms <= MAX_TIMER_MS) this.timer = setTimeout(onDeadline, ms, this);
    }
  }

  data(_stream: H2Stream, chunk: Buffer): void {
    if (this.done) return;
    let at = 0;
    if (this.length < 0) {
      // The 5-byte prefix may arrive split over frames.
      const need = 5 - (this.head?.length ?? 0);
      const part = chunk.subarray(0, need);
      this.head = this.head ? Buffer.concat([this.head, part]) : Buffer.from(part);
      if (this.head.length < 5) return;
      at = need;
      if (this.head[0] !== 0)
        return this.fail(status.UNIMPLEMENTED, 'Received a compressed message but no grpc-encoding was declared');
      const length = this.head.readUInt32BE(1);
      const max = this.deps.maxMessageBytes;
      if (length > max)
        return this.fail(status.RESOURCE_EXHAUSTED, `Received message larger than max (${length} vs ${max})`);
      this.length = length;
    }
    const rest = chunk.length - at;
    if (this.received + rest > this.length)
      return this.fail(status.UNIMPLEMENTED, `Received a second request message for unary method ${this.method.path}`);
    // Copied as it arrives (the chunk is a view of the socket's buffer): memory follows the bytes received, not
    // the length a prefix announces.
    if (rest > 0) this.parts.push(Buffer.from(chunk.subarray(at)));
    this.received += rest;
  }

  end(): void {
    if (this.done) return;
    if (this.length < 0 || this.received !== this.length)
      return this.fail(
        status.UNIMPLEMENTED,
        `Received no complete request message for unary method ${this.method.path}`,
      );
    const message = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.length);
    this.parts = [];
    let result: Promise<unknown>;
    try {
      const request = this.method.decode(message);
      if (request instanceof UndecodableRequest) return this.fail(status.INVALID_ARGUMENT, request.message);
      result = this.method.run(request, this, this.conn.remoteAddress);
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (response) => this.reply(response),
      (err: unknown) => {
        if (this.done) return;
        const { code, details } = this.deps.toStatus(err, this.method.path);
        this.fail(code, details);
      },
    );
  }

  reset(): void {
    if (!this.done) this.finish(); // the API reads `aborted`; nothing is written
  }

  private reply(response: unknown): void {
    if (this.done) return;
    let body: Buffer;
    try {
      body = this.method.encode(response);
    } catch (err) {
      const { code, details } = this.deps.toStatus(err, this.method.path);
      return this.fail(code, details);
    }
    const max = this.deps.maxMessageBytes;
    if (body.length > max)
      return this.fail(status.RESOURCE_EXHAUSTED, `Sent message larger than max (${body.length} vs. ${max})`);
    this.finish();
    this.conn.sendUnary(this.stream, RESPONSE_HEADERS, body, OK_TRAILERS);
  }

  fail(code: number, details: string): void {
    if (this.done) return;
    this.finish();
    failStream(this.conn, this.stream, code, details);
  }

  private finish(): void {
    this.done = true;
    this.parts = [];
    this.head = null;
    clearTimeout(this.timer);
  }
}
