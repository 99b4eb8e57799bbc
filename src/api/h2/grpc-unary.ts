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
import { percentEncode } from '../grpc-status.js';
import type { Cancellation } from '../prompt-frontend.js';
import { callDeadline, UnaryRequest } from '../unary-request.js';
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
  private readonly request: UnaryRequest;
  deadlineMs = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    private readonly conn: H2Connection,
    private readonly stream: H2Stream,
    private readonly method: UnaryMethod,
    private readonly deps: UnaryDeps,
  ) {
    // DATA chunks are views of the socket's read buffers: copied as they arrive.
    this.request = new UnaryRequest(method.path, deps.maxMessageBytes, true);
  }

  get aborted(): boolean {
    return this.done || Date.now() > this.deadlineMs;
  }

  start(): void {
    this.stream.sink = this;
    const deadline = callDeadline(this.stream.header('grpc-timeout'));
    if ('code' in deadline) return this.fail(deadline.code, deadline.details);
    this.deadlineMs = deadline.deadlineMs;
    if (deadline.timerMs !== null) this.timer = setTimeout(onDeadline, deadline.timerMs, this);
  }

  data(_stream: H2Stream, chunk: Buffer): void {
    if (this.done) return;
    const failure = this.request.push(chunk);
    if (failure) this.fail(failure.code, failure.details);
  }

  end(): void {
    if (this.done) return;
    const message = this.request.message();
    if ('code' in message) return this.fail(message.code, message.details);
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
    this.request.clear();
    clearTimeout(this.timer);
  }
}
