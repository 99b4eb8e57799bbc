/**
 * Shared helpers of the lean HTTP/2 server tests (lean-server.test.ts, h2-protocol.test.ts): a LeanGrpcServer on
 * 127.0.0.1 with a small methods map of its own, a raw TCP HTTP/2 client that writes hand-made frames and parses the
 * server's (RFC 9113 §4.1), a unary call over node:http2, and `waitFor` (tests wait for events, never a fixed sleep).
 * The frame numbers here are written from RFC 9113 §6/§7, not imported from src, so that the tests check the server
 * against the RFC rather than against itself.
 */
import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { IndexerError } from '../../../../src/common/index.js';
import { toStatus } from '../../../../src/api/grpc-status.js';
import {
  UNBOUNDED_LIMITS,
  type ConnectionGuardCounters,
  type ConnectionLimits,
} from '../../../../src/api/connection-limits.js';
import type { Cancellation } from '../../../../src/api/prompt-frontend.js';
import { UndecodableRequest } from '../../../../src/api/wire/undecodable.js';
import { HpackDecoder, literalWithoutIndexing } from '../../../../src/api/h2/hpack.js';
import { LeanGrpcServer, type LeanServerOptions } from '../../../../src/api/h2/lean-server.js';
import { GrpcJsProxy } from '../../../../src/api/h2/proxy.js';
import type { UnaryMethod } from '../../../../src/api/h2/grpc-unary.js';

// --- RFC 9113 numbers ----------------------------------------------------------------------------------------------

/** Frame types (§6). */
export const T = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;
/** Flags (§6). */
export const END_STREAM = 0x1;
export const ACK = 0x1;
export const END_HEADERS = 0x4;
export const PADDED = 0x8;
export const PRIORITY_FLAG = 0x20;
/** SETTINGS parameters (§6.5.2). */
export const S = { MAX_CONCURRENT_STREAMS: 0x3, INITIAL_WINDOW_SIZE: 0x4, MAX_FRAME_SIZE: 0x5 } as const;
/** Error codes (§7). */
export const E = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const MAX_WINDOW = 2 ** 31 - 1;

// --- waiting -------------------------------------------------------------------------------------------------------

/** Polls `predicate` every 2 ms until it holds; fails after `timeoutMs` (a bound for a hung test, not a timing check). */
export async function waitFor(predicate: () => boolean, what = 'condition', timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Runs registered clean-ups (clients, servers) in reverse order; afterEach calls `run`. */
export class Cleanup {
  private readonly steps: (() => unknown)[] = [];
  add(step: () => unknown): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    while (this.steps.length > 0) await this.steps.pop()!();
  }
}

// --- frames --------------------------------------------------------------------------------------------------------

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

export function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0);
  return out;
}

export function settings(pairs: [number, number][] = []): Buffer {
  return frame(
    T.SETTINGS,
    0,
    0,
    Buffer.concat(pairs.map(([id, v]) => Buffer.concat([Buffer.from([id >> 8, id & 0xff]), u32(v)]))),
  );
}

export const windowUpdate = (stream: number, increment: number) => frame(T.WINDOW_UPDATE, 0, stream, u32(increment));
export const rstStream = (stream: number, code: number) => frame(T.RST_STREAM, 0, stream, u32(code));

/** A length-prefixed gRPC message (PROTOCOL-HTTP2.md: Compressed-Flag, Message-Length, Message). */
export function grpcMessage(message: Buffer | string, compressedFlag = 0): Buffer {
  const body = typeof message === 'string' ? Buffer.from(message) : message;
  const head = Buffer.alloc(5);
  head[0] = compressedFlag;
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** The messages of a gRPC response body. */
export function grpcMessages(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < body.length;) {
    const length = body.readUInt32BE(at + 1);
    out.push(body.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return out;
}

/** A gRPC request header block, every field a literal without indexing (RFC 7541 §6.2.2). */
export function requestBlock(path: string, extra: [string, string][] = []): Buffer {
  const fields: [string, string][] = [
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', '127.0.0.1'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ...extra,
  ];
  return Buffer.concat(fields.map(([name, value]) => literalWithoutIndexing(name, value)));
}

export interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
  /** On the frame that ends a header block (END_HEADERS): its fields decoded, name → value. */
  fields?: Record<string, string>;
}

/** GOAWAY's payload (§6.8). */
export function goawayOf(f: Frame): { last: number; code: number } {
  return { last: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) };
}

// --- raw client ----------------------------------------------------------------------------------------------------

/** An HTTP/2 client over plain TCP that sends what a test writes and records every frame the server sends. */
export class RawClient {
  readonly frames: Frame[] = [];
  ended = false;
  closed = false;
  /** Answer the server's SETTINGS with an ACK and its PINGs with a PING ACK (§6.5.3, §6.7), as a client must. */
  ackSettings = true;
  ackPings = true;
  private pending = Buffer.alloc(0);
  private readonly decoder = new HpackDecoder(4096);
  private block: Buffer[] = [];
  /** The preface was sent (a client answers nothing before it); server SETTINGS seen before it wait for their ACK. */
  private started = false;
  private settingsToAck = 0;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => (this.ended = true));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static async connect(port: number, cleanup: Cleanup): Promise<RawClient> {
    const socket = netConnect(port, '127.0.0.1');
    const client = new RawClient(socket);
    cleanup.add(() => socket.destroy());
    await once(socket, 'connect');
    return client;
  }

  send(...parts: Buffer[]): void {
    this.socket.write(Buffer.concat(parts));
  }

  /** The client preface and SETTINGS (§3.4). */
  handshake(pairs: [number, number][] = []): void {
    this.started = true;
    const acks = Array.from({ length: this.ackSettings ? this.settingsToAck : 0 }, () => frame(T.SETTINGS, ACK, 0));
    this.send(PREFACE, settings(pairs), ...acks);
  }

  /** A gRPC unary request on `stream`: HEADERS, then DATA frames of at most 16,384 bytes, the last with END_STREAM. */
  request(stream: number, path: string, message: Buffer | string, extra: [string, string][] = []): void {
    const body = grpcMessage(message);
    const parts = [frame(T.HEADERS, END_HEADERS, stream, requestBlock(path, extra))];
    for (let at = 0; at < body.length; at += 16_384) {
      const end = at + 16_384 >= body.length ? END_STREAM : 0;
      parts.push(frame(T.DATA, end, stream, body.subarray(at, at + 16_384)));
    }
    this.send(...parts);
  }

  /** The first frame from index `from` on that matches. */
  async next(match: (f: Frame) => boolean, what: string, from = 0): Promise<Frame> {
    let found: Frame | undefined;
    await waitFor(() => (found = this.frames.slice(from).find(match)) !== undefined, what);
    return found!;
  }

  /** Resolves once the server closed the connection (FIN or reset). */
  async waitClosed(): Promise<void> {
    await waitFor(() => this.ended || this.closed, 'the server to close the connection');
  }

  /**
   * A PING round trip: everything the server wrote in reply to frames sent before it has arrived once its ACK has
   * (frames are processed and written in order, RFC 9113 §6.7). Returns the index of the ACK.
   */
  async barrier(): Promise<number> {
    const data = randomBytes(8);
    this.send(frame(T.PING, 0, 0, data));
    const ack = await this.next((f) => f.type === T.PING && f.flags === ACK && f.payload.equals(data), 'PING ACK');
    return this.frames.indexOf(ack);
  }

  /** Frames on one stream. */
  on(stream: number): Frame[] {
    return this.frames.filter((f) => f.stream === stream);
  }

  /** The DATA bytes received on a stream (the server never pads). */
  data(stream: number): Buffer {
    return Buffer.concat(this.on(stream).flatMap((f) => (f.type === T.DATA ? [f.payload] : [])));
  }

  /** The sum of the WINDOW_UPDATE increments received for a stream (0: the connection). */
  credit(stream: number): number {
    return this.on(stream).reduce((sum, f) => sum + (f.type === T.WINDOW_UPDATE ? f.payload.readUInt32BE(0) : 0), 0);
  }

  private onData(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 9) {
      const length = this.pending.readUIntBE(0, 3);
      if (this.pending.length < 9 + length) break;
      const f: Frame = {
        type: this.pending[3],
        flags: this.pending[4],
        stream: this.pending.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.pending.subarray(9, 9 + length)),
      };
      this.pending = this.pending.subarray(9 + length);
      if (f.type === T.HEADERS || f.type === T.CONTINUATION) {
        this.block.push(f.payload);
        if (f.flags & END_HEADERS) {
          const out: string[] = [];
          const block = Buffer.concat(this.block);
          this.decoder.decode(block, 0, block.length, out);
          this.block = [];
          f.fields = {};
          for (let i = 0; i < out.length; i += 2) f.fields[out[i]] = out[i + 1];
        }
      }
      this.frames.push(f);
      if (f.type === T.SETTINGS && !(f.flags & ACK)) {
        if (!this.started) this.settingsToAck++;
        else if (this.ackSettings) this.send(frame(T.SETTINGS, ACK, 0));
      }
      if (f.type === T.PING && !(f.flags & ACK) && this.ackPings && this.started)
        this.send(frame(T.PING, ACK, 0, f.payload));
    }
  }
}

// --- node:http2 client ---------------------------------------------------------------------------------------------

export interface H2Answer {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  data: Buffer;
  rstCode: number | undefined;
  /** grpc-status and grpc-message, from the trailers or from a trailers-only answer's headers. */
  status: string | undefined;
  message: string | undefined;
}

export async function openSession(port: number, cleanup: Cleanup): Promise<ClientHttp2Session> {
  const session = h2connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  cleanup.add(() => session.destroy());
  await once(session, 'connect');
  return session;
}

/** A gRPC call over node:http2 (its HPACK encoder indexes and Huffman-codes): the body as given, then END_STREAM. */
export function h2Call(
  session: ClientHttp2Session,
  path: string,
  body: Buffer,
  extra: Record<string, string> = {},
): Promise<H2Answer> {
  const req = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...extra,
  });
  let headers: IncomingHttpHeaders = {};
  let trailers: IncomingHttpHeaders = {};
  const chunks: Buffer[] = [];
  req.on('response', (h) => (headers = h));
  req.on('trailers', (t) => (trailers = t));
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('error', () => undefined);
  req.end(body);
  return new Promise((resolve) =>
    req.on('close', () => {
      const pick = (name: string) => (trailers[name] ?? headers[name]) as string | undefined;
      resolve({
        headers,
        trailers,
        data: Buffer.concat(chunks),
        rstCode: req.rstCode,
        status: pick('grpc-status'),
        message: pick('grpc-message'),
      });
    }),
  );
}

// --- the server ----------------------------------------------------------------------------------------------------

export const ECHO = '/test.Echo/Echo';
/** Waits until released or cancelled. */
export const HOLD = '/test.Echo/Hold';
/** Answers the request's length in decimal. */
export const LENGTH = '/test.Echo/Length';
export const ADMIN = '/kvindexer.v1.KvIndexer/AddEndpoint';
/** Limits that never apply (some bounded, so that a test server stays small); a test lowers the one it checks. */
export const NO_LIMITS: ConnectionLimits = {
  ...UNBOUNDED_LIMITS,
  maxConcurrentStreams: 1_000,
  maxConnections: 1_000,
  maxOpenCalls: 100_000,
};

export const MAX_MESSAGE_BYTES = 4 << 20;

/** A call of HOLD in progress. */
export interface Held {
  request: Buffer;
  cancellation: Cancellation;
  /** The operation saw `cancellation.aborted` (it polls it, as the index thread's operations do). */
  abortedSeen: boolean;
  release(answer: Buffer): void;
}

export interface LeanFixture {
  server: LeanGrpcServer;
  port: number;
  guard: ConnectionGuardCounters;
  held: Held[];
  /** Errors toStatus logged as unexpected. */
  logged: unknown[];
}

/**
 * A LeanGrpcServer on 127.0.0.1:0 serving ECHO (requests starting 'fail' reject with an IndexerError, 'boom' with a
 * plain Error, 'undecodable' do not decode), HOLD, LENGTH and ADMIN (echo); anything else goes to grpc-js at `backend`.
 */
export async function startLean(
  cleanup: Cleanup,
  opts: { limits?: Partial<ConnectionLimits>; adminToken?: string; backend?: string } = {},
): Promise<LeanFixture> {
  const held: Held[] = [];
  const logged: unknown[] = [];
  const guard: ConnectionGuardCounters = {
    handshakeTimeouts: 0,
    refused: 0,
    openCalls: 0,
    callsRefused: 0,
    callsEvicted: 0,
  };
  const echo: UnaryMethod = {
    path: ECHO,
    decode: (bytes) =>
      bytes.toString('latin1').startsWith('undecodable') ? new UndecodableRequest('malformed Echo: no') : bytes,
    encode: (message) => message as Buffer,
    run: async (request) => {
      const text = (request as Buffer).toString('latin1');
      if (text.startsWith('fail')) throw new IndexerError('invalid_argument', '', 'bad %thing é');
      if (text.startsWith('boom')) throw new Error('boom');
      return request;
    },
  };
  const hold: UnaryMethod = {
    path: HOLD,
    decode: (bytes) => bytes,
    encode: (message) => message as Buffer,
    run: (request, cancellation) =>
      new Promise((resolve, reject) => {
        const timer = setInterval(() => {
          if (!cancellation.aborted) return;
          call.abortedSeen = true;
          clearInterval(timer);
          reject(new Error('cancelled'));
        }, 2);
        const call: Held = {
          request: request as Buffer,
          cancellation,
          abortedSeen: false,
          release: (answer) => {
            clearInterval(timer);
            resolve(answer);
          },
        };
        held.push(call);
      }),
  };
  const length: UnaryMethod = {
    path: LENGTH,
    decode: (bytes) => bytes,
    encode: (message) => message as Buffer,
    run: async (request) => Buffer.from(String((request as Buffer).length)),
  };
  const methods = new Map<string, UnaryMethod>([
    [ECHO, echo],
    [HOLD, hold],
    [LENGTH, length],
    [ADMIN, { ...echo, path: ADMIN }],
  ]);
  const proxy = new GrpcJsProxy(opts.backend ?? '127.0.0.1:9');
  const options: LeanServerOptions = { limits: { ...NO_LIMITS, ...opts.limits }, adminToken: opts.adminToken };
  const server = new LeanGrpcServer(
    methods,
    {
      maxMessageBytes: MAX_MESSAGE_BYTES,
      toStatus: (err, path) => toStatus(err, path, { error: (obj: unknown) => logged.push(obj) }),
    },
    proxy,
    options,
    guard,
  );
  const port = await server.listen('127.0.0.1', 0);
  cleanup.add(async () => {
    for (const call of held) call.release(Buffer.alloc(0));
    await server.stop(Date.now(), () => undefined);
    proxy.close();
  });
  return { server, port, guard, held, logged };
}
