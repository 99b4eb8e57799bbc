/**
 * A lean unary path for the hot RPC `/kvindexer.v1.KvIndexer/Score` (config `api.fastScore`, issue 16). A measured
 * spike (docs/read-path-spike.md §3) found grpc-js's generic server machinery costing more CPU per Score call than the
 * Score path itself. Here a Score stream is taken from grpc-js's listening HTTP/2 server at `emit('stream')` (the
 * interception point of connection-limits.ts, installed inside `guardCalls`, so the open-call bound and its accounting
 * apply unchanged) and served directly: the request is read as one gRPC length-prefixed message (1 byte compressed
 * flag, 4 bytes big-endian length; doc/PROTOCOL-HTTP2.md of grpc/grpc), decoded and encoded with the same hand codec as
 * the grpc-js path (the service definition's Score (de)serializers, proto.ts), answered by the same `IndexerApi.score`
 * and its errors mapped by the same `toStatus` (grpc-status.ts). Every other stream — other methods, reflection,
 * health, a Score call with a compressed encoding declared or a non-gRPC content type — goes to grpc-js untouched.
 *
 * As grpc-js does: `grpc-timeout` sets a deadline (DEADLINE_EXCEEDED 'Deadline exceeded', and the cancellation the
 * API reads), a malformed one is INTERNAL; a message over the receive bound is RESOURCE_EXHAUSTED; no message or a
 * second one is UNIMPLEMENTED; a client that resets the stream sets the cancellation flag and nothing more is written.
 * A message with the compressed flag set although no compression was declared (grpc-encoding absent or identity) is
 * refused UNIMPLEMENTED.
 */

import type { MethodDefinition } from '@grpc/grpc-js';
import { constants, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { ScoreRequestMsg, ScoreResponseMsg } from './messages.js';
import { percentEncode, plainGrpcRequest } from './grpc-status.js';
import type { Cancellation } from './prompt-frontend.js';
import { callDeadline, UnaryRequest } from './unary-request.js';
import { UndecodableRequest } from './wire/undecodable.js';

export const SCORE_PATH = '/kvindexer.v1.KvIndexer/Score';

/** gRPC status codes used here (numbers of the gRPC spec; this module works on the HTTP/2 layer). */
const OK = 0;
const INVALID_ARGUMENT = 3;
const DEADLINE_EXCEEDED = 4;
const RESOURCE_EXHAUSTED = 8;

export interface FastScoreDeps {
  /** Largest request and response message, as grpc.max_receive/send_message_length. */
  maxMessageBytes: number;
  /** The Score method with the hand codec (proto.ts): its requestDeserialize and responseSerialize. */
  method: Pick<MethodDefinition<ScoreRequestMsg, ScoreResponseMsg>, 'requestDeserialize' | 'responseSerialize'>;
  /** The same call grpc-server.ts's Score handler makes. */
  score(req: ScoreRequestMsg, cancellation: Cancellation, caller: string): Promise<ScoreResponseMsg>;
  /** An error thrown by `score` as a status (grpc-status.ts toStatus; logs unexpected errors). */
  toStatus(err: unknown, path: string): { code: number; details: string };
}

/** Hands the Score streams of one grpc-js listening server to the fast path; install before `guardCalls`. */
export function interceptScore(server: Http2Server, deps: FastScoreDeps): void {
  const emit = server.emit;
  server.emit = function (this: Http2Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'stream') {
      const headers = args[1] as IncomingHttpHeaders;
      if (headers[':path'] === SCORE_PATH && takes(headers)) {
        new FastScoreCall(args[0] as ServerHttp2Stream, deps).start(headers);
        return true;
      }
    }
    return emit.call(this, event, ...args);
  } as Http2Server['emit'];
}

/** A gRPC POST with no compression declared; anything else stays with grpc-js, which answers it as before. */
function takes(headers: IncomingHttpHeaders): boolean {
  return plainGrpcRequest(headers[':method'], headers['content-type'], headers['grpc-encoding']);
}

/** grpc-js also sends grpc-encoding and grpc-accept-encoding; both are optional (responses are never compressed). */
const RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc+proto' };
const OK_TRAILERS = { 'grpc-status': String(OK), 'grpc-message': 'OK' };

const CALL = Symbol('fastScoreCall');
type Carrying = ServerHttp2Stream & { [CALL]: FastScoreCall };

/** The listeners every call shares: `this` is the stream, carrying its call. */
function onData(this: Carrying, chunk: Buffer): void {
  this[CALL].data(chunk);
}
function onEnd(this: Carrying): void {
  this[CALL].end();
}
function onClose(this: Carrying): void {
  this[CALL].closed();
}
function onDeadline(call: FastScoreCall): void {
  call.fail(DEADLINE_EXCEEDED, 'Deadline exceeded');
}
function sendOkTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers(OK_TRAILERS);
}
function ignore(): void {}

/** One Score call: read the message, run it, answer once. It is its own cancellation (client reset or deadline). */
class FastScoreCall implements Cancellation {
  /** node:http2 hands each chunk over as a buffer of its own: kept as it is. */
  private readonly request: UnaryRequest;
  deadlineMs = Infinity;
  private timer: NodeJS.Timeout | undefined;
  /** Answered or closed by the client: nothing more is written. */
  private done = false;

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly deps: FastScoreDeps,
  ) {
    this.request = new UnaryRequest(SCORE_PATH, deps.maxMessageBytes, false);
  }

  get aborted(): boolean {
    return this.done || Date.now() > this.deadlineMs;
  }

  start(headers: IncomingHttpHeaders): void {
    const stream = this.stream as Carrying;
    stream[CALL] = this;
    stream.on('error', ignore); // a reset stream reports an error; 'close' handles it
    stream.once('close', onClose);
    const deadline = callDeadline(headers['grpc-timeout']);
    if ('code' in deadline) return this.fail(deadline.code, deadline.details);
    this.deadlineMs = deadline.deadlineMs;
    if (deadline.timerMs !== null) this.timer = setTimeout(onDeadline, deadline.timerMs, this);
    stream.on('data', onData);
    stream.once('end', onEnd);
  }

  /** Not private: reached through the stream by the shared listeners below (no closure per call). */
  data(chunk: Buffer): void {
    if (this.done) return;
    const failure = this.request.push(chunk);
    if (failure) this.fail(failure.code, failure.details);
  }

  end(): void {
    if (this.done) return;
    const message = this.request.message();
    if ('code' in message) return this.fail(message.code, message.details);
    const request = this.deps.method.requestDeserialize(message) as ScoreRequestMsg | UndecodableRequest;
    if (request instanceof UndecodableRequest) return this.fail(INVALID_ARGUMENT, request.message);
    let result: Promise<ScoreResponseMsg>;
    try {
      result = this.deps.score(request, this, this.stream.session?.socket?.remoteAddress ?? '');
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      (response) => this.reply(response),
      (err: unknown) => {
        if (this.done) return;
        const { code, details } = this.deps.toStatus(err, SCORE_PATH);
        this.fail(code, details);
      },
    );
  }

  private reply(response: ScoreResponseMsg): void {
    if (this.done) return;
    let body: Buffer;
    try {
      body = this.deps.method.responseSerialize(response);
    } catch (err) {
      const { code, details } = this.deps.toStatus(err, SCORE_PATH);
      return this.fail(code, details);
    }
    if (body.length > this.deps.maxMessageBytes) {
      return this.fail(
        RESOURCE_EXHAUSTED,
        `Sent message larger than max (${body.length} vs. ${this.deps.maxMessageBytes})`,
      );
    }
    this.finish();
    const frame = Buffer.allocUnsafe(5 + body.length);
    frame[0] = 0;
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    const stream = this.stream;
    try {
      stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
      stream.once('wantTrailers', sendOkTrailers);
      stream.end(frame);
    } catch {
      stream.destroy(); // closed in the meantime
    }
  }

  /** Trailers-only answer with a status; a request still arriving is cut short with RST_STREAM NO_ERROR. */
  fail(code: number, details: string): void {
    if (this.done) return;
    this.finish();
    const stream = this.stream;
    try {
      stream.respond(
        { ...RESPONSE_HEADERS, 'grpc-status': String(code), 'grpc-message': percentEncode(details) },
        { endStream: true },
      );
      if (!stream.readableEnded) stream.close(constants.NGHTTP2_NO_ERROR);
    } catch {
      stream.destroy();
    }
  }

  private finish(): void {
    this.done = true;
    this.request.clear();
    clearTimeout(this.timer);
  }

  closed(): void {
    if (!this.done) this.finish(); // the client reset the stream: the API reads `aborted`, nothing is written
  }
}
