/**
 * LeanGrpcServer (src/api/h2/lean-server.ts) at the gRPC level, on real sockets: unary calls over node:http2 (whose
 * HPACK encoder indexes and Huffman-codes), the unary rules of gRPC's doc/PROTOCOL-HTTP2.md as grpc-js applies them
 * (statuses, grpc-timeout, message bounds), the connection limits of connection-limits.ts, admin authorisation, the
 * relay of what it does not serve itself to a real grpc-js server, and graceful stop. HTTP/2 frame-level behaviour
 * is in h2-protocol.test.ts.
 */
import { gzipSync } from 'node:zlib';
import { connect as netConnect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Client,
  Metadata,
  Server,
  ServerCredentials,
  credentials,
  type MethodDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  ADMIN,
  Cleanup,
  E,
  ECHO,
  END_HEADERS,
  END_STREAM,
  HOLD,
  RawClient,
  T,
  frame,
  requestBlock,
  goawayOf,
  grpcMessage,
  grpcMessages,
  h2Call,
  openSession,
  startLean,
  waitFor,
  type H2Answer,
} from './raw-h2.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** A trailers-only answer (PROTOCOL-HTTP2.md "Trailers-Only"): HTTP status 200, the status in the one header block. */
function expectTrailersOnly(answer: H2Answer, status: number, message: string): void {
  expect(answer.headers[':status']).toBe(200);
  expect(answer.headers['grpc-status']).toBe(String(status));
  expect(answer.headers['grpc-message']).toBe(message);
  expect(answer.data.length).toBe(0);
}

/** A successful unary answer: headers, exactly one message, trailers grpc-status 0. */
function expectMessage(answer: H2Answer, message: Buffer | string): void {
  expect(answer.headers[':status']).toBe(200);
  expect(answer.headers['content-type']).toBe('application/grpc+proto');
  expect(grpcMessages(answer.data)).toEqual([Buffer.from(message)]);
  expect(answer.trailers['grpc-status']).toBe('0');
  expect(answer.trailers['grpc-message']).toBe('OK');
}

describe('LeanGrpcServer: unary calls over node:http2', () => {
  it('echoes the exact bytes with headers, one message and OK trailers', async () => {
    const lean = await startLean(cleanup);
    const session = await openSession(lean.port, cleanup);
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expectMessage(await h2Call(session, ECHO, grpcMessage(bytes)), bytes);
    expectMessage(await h2Call(session, ECHO, grpcMessage('')), '');
    expect(lean.guard.openCalls).toBe(0);
  });

  it('answers 200 concurrent calls on one connection, each with its own bytes', async () => {
    const lean = await startLean(cleanup);
    const session = await openSession(lean.port, cleanup);
    const texts = Array.from({ length: 200 }, (_, i) => `call-${i}-${'x'.repeat(i)}`);
    const answers = await Promise.all(texts.map((t) => h2Call(session, ECHO, grpcMessage(t))));
    answers.forEach((answer, i) => expectMessage(answer, texts[i]));
    expect(lean.guard.openCalls).toBe(0);
  });
});

describe('LeanGrpcServer: errors as gRPC statuses', () => {
  it('answers an IndexerError with its code and a percent-encoded grpc-message (PROTOCOL-HTTP2.md Status-Message)', async () => {
    const lean = await startLean(cleanup);
    const session = await openSession(lean.port, cleanup);
    expectTrailersOnly(await h2Call(session, ECHO, grpcMessage('fail')), 3, 'bad %25thing %C3%A9');
    expectTrailersOnly(await h2Call(session, ECHO, grpcMessage('undecodable')), 3, 'malformed Echo: no');
    expect(lean.logged).toEqual([]);
    expectTrailersOnly(await h2Call(session, ECHO, grpcMessage('boom')), 13, 'internal error (logged by the server)');
    expect(lean.logged).toHaveLength(1);
  });

  it('ends a call at its grpc-timeout with DEADLINE_EXCEEDED, and the operation sees the cancellation', async () => {
    const lean = await startLean(cleanup);
    const session = await openSession(lean.port, cleanup);
    // grpc-timeout is TimeoutValue TimeoutUnit, here 50 ms (PROTOCOL-HTTP2.md "Timeout").
    const answer = await h2Call(session, HOLD, grpcMessage('wait'), { 'grpc-timeout': '50m' });
    expectTrailersOnly(answer, 4, 'Deadline exceeded');
    expect(lean.held).toHaveLength(1);
    expect(Number.isFinite(lean.held[0].cancellation.deadlineMs)).toBe(true);
    await waitFor(() => lean.held[0].abortedSeen, 'the operation to see aborted');
  });

  it('answers a malformed grpc-timeout INTERNAL, as grpc-js does', async () => {
    const lean = await startLean(cleanup);
    const session = await openSession(lean.port, cleanup);
    // Not a unit; more than 8 digits; 's' is not a unit (seconds are 'S').
    for (const value of ['soon', '123456789m', '5s']) {
      const answer = await h2Call(session, ECHO, grpcMessage('x'), { 'grpc-timeout': value });
      expectTrailersOnly(answer, 13, `Invalid grpc-timeout value "${value}"`);
    }
  });

  it('refuses the compressed flag without grpc-encoding, an oversized message, a second message and no message', async () => {
    const lean = await startLean(cleanup);
    const session = await openSession(lean.port, cleanup);
    const call = (body: Buffer) => h2Call(session, ECHO, body);
    // A unary request is exactly one Length-Prefixed-Message (PROTOCOL-HTTP2.md "Requests"), as grpc-js enforces.
    expectTrailersOnly(
      await call(grpcMessage('x', 1)),
      12,
      'Received a compressed message but no grpc-encoding was declared',
    );
    // The bound is read from the length prefix: the message need not be sent.
    const oversized = Buffer.concat([Buffer.from([0, 0, 0x40, 0, 1]), Buffer.from('abc')]);
    expectTrailersOnly(await call(oversized), 8, 'Received message larger than max (4194305 vs 4194304)');
    const two = Buffer.concat([grpcMessage('one'), grpcMessage('two')]);
    expectTrailersOnly(await call(two), 12, `Received a second request message for unary method ${ECHO}`);
    const none = `Received no complete request message for unary method ${ECHO}`;
    expectTrailersOnly(await call(Buffer.alloc(0)), 12, none);
    expectTrailersOnly(await call(grpcMessage('truncated').subarray(0, 8)), 12, none);
    expect(lean.guard.openCalls).toBe(0);
  });
});

describe('LeanGrpcServer: limits', () => {
  it('refuses a call over maxOpenCalls when its own connection holds them (RESOURCE_EXHAUSTED)', async () => {
    const lean = await startLean(cleanup, { limits: { maxOpenCalls: 2 } });
    const session = await openSession(lean.port, cleanup);
    const first = [h2Call(session, HOLD, grpcMessage('a')), h2Call(session, HOLD, grpcMessage('b'))];
    await waitFor(() => lean.held.length === 2, 'two held calls');
    const third = await h2Call(session, HOLD, grpcMessage('c'));
    expectTrailersOnly(third, 8, 'server holds 2 open calls (api.maxOpenCalls); retry later');
    expect(lean.guard).toMatchObject({ callsRefused: 1, callsEvicted: 0, openCalls: 2 });
    lean.held.forEach((h) => h.release(h.request));
    const [a, b] = await Promise.all(first);
    expectMessage(a, 'a');
    expectMessage(b, 'b');
    expect(lean.guard.openCalls).toBe(0);
  });

  it('at maxOpenCalls resets the oldest call of the connection holding more (RST_STREAM ENHANCE_YOUR_CALM)', async () => {
    const lean = await startLean(cleanup, { limits: { maxOpenCalls: 2 } });
    const a = await RawClient.connect(lean.port, cleanup);
    a.handshake();
    a.request(1, HOLD, 'a1');
    a.request(3, HOLD, 'a3');
    await waitFor(() => lean.held.length === 2, 'A to hold two calls');
    const b = await openSession(lean.port, cleanup);
    const call = h2Call(b, HOLD, grpcMessage('b'));
    const rst = await a.next((f) => f.type === T.RST_STREAM, 'RST_STREAM on A');
    expect([rst.stream, rst.payload.readUInt32BE(0)]).toEqual([1, E.ENHANCE_YOUR_CALM]);
    await waitFor(() => lean.held.length === 3 && lean.held[0].abortedSeen, 'B admitted and A1 cancelled');
    expect(lean.guard).toMatchObject({ callsEvicted: 1, callsRefused: 0, openCalls: 2 });
    lean.held[2].release(Buffer.from('b ok'));
    expectMessage(await call, 'b ok');
  });

  it('sends GOAWAY NO_ERROR to a connection idle for maxConnectionIdleMs, not to one with a call open', async () => {
    const lean = await startLean(cleanup, { limits: { maxConnectionIdleMs: 200 } });
    const busy = await RawClient.connect(lean.port, cleanup);
    busy.handshake();
    busy.request(1, HOLD, 'busy');
    await waitFor(() => lean.held.length === 1, 'the held call');
    const idle = await RawClient.connect(lean.port, cleanup);
    idle.handshake();
    const goaway = await idle.next((f) => f.type === T.GOAWAY, 'GOAWAY');
    expect(goawayOf(goaway)).toEqual({ last: 0, code: E.NO_ERROR });
    await idle.waitClosed();
    await busy.barrier();
    expect(busy.frames.filter((f) => f.type === T.GOAWAY)).toEqual([]);
  });

  it('sends GOAWAY at maxConnectionAgeMs and lets the open call finish', async () => {
    const lean = await startLean(cleanup, { limits: { maxConnectionAgeMs: 200 } });
    const client = await RawClient.connect(lean.port, cleanup);
    client.handshake();
    client.request(1, HOLD, 'old');
    await waitFor(() => lean.held.length === 1, 'the held call');
    const goaway = await client.next((f) => f.type === T.GOAWAY, 'GOAWAY');
    expect(goawayOf(goaway)).toEqual({ last: 1, code: E.NO_ERROR });
    lean.held[0].release(Buffer.from('done'));
    const trailers = await client.next((f) => f.stream === 1 && (f.flags & 1) === 1, 'the trailers');
    expect(trailers.fields).toMatchObject({ 'grpc-status': '0' });
    await client.waitClosed();
  });

  it('closes a connection that does not finish its handshake within handshakeTimeoutMs', async () => {
    const lean = await startLean(cleanup, { limits: { handshakeTimeoutMs: 100 } });
    const silent = await RawClient.connect(lean.port, cleanup);
    await silent.waitClosed();
    expect(lean.guard.handshakeTimeouts).toBe(1);
  });

  it('closes connections beyond maxConnections at once', async () => {
    const lean = await startLean(cleanup, { limits: { maxConnections: 1 } });
    const first = await RawClient.connect(lean.port, cleanup);
    first.handshake();
    await first.barrier();
    const second = await RawClient.connect(lean.port, cleanup);
    await second.waitClosed();
    expect(second.frames).toEqual([]);
    expect(lean.guard.refused).toBe(1);
    expect(first.closed).toBe(false);
  });

  it('PINGs a silent connection after keepaliveTimeMs and closes it when the PING is not answered', async () => {
    const lean = await startLean(cleanup, { limits: { keepaliveTimeMs: 100, keepaliveTimeoutMs: 100 } });
    const answering = await RawClient.connect(lean.port, cleanup);
    answering.handshake();
    const mute = await RawClient.connect(lean.port, cleanup);
    mute.ackPings = false;
    mute.handshake();
    const ping = await mute.next((f) => f.type === T.PING, 'keepalive PING');
    expect([ping.stream, ping.flags, ping.payload.length]).toEqual([0, 0, 8]);
    await mute.waitClosed();
    // A second keepalive PING is sent only once the first was answered: the answering connection stays open.
    await waitFor(() => answering.frames.filter((f) => f.type === T.PING && f.flags === 0).length >= 2, 'two PINGs');
    expect(answering.closed).toBe(false);
  });
});

describe('LeanGrpcServer: admin token', () => {
  it('answers admin paths UNAUTHENTICATED without the bearer token and serves them with it', async () => {
    const lean = await startLean(cleanup, { adminToken: 's3cret' });
    const session = await openSession(lean.port, cleanup);
    const denied = 'admin RPCs need the header authorization: Bearer <token>';
    expectTrailersOnly(await h2Call(session, ADMIN, grpcMessage('add')), 16, denied);
    expectTrailersOnly(await h2Call(session, ADMIN, grpcMessage('add'), { authorization: 'Bearer nope' }), 16, denied);
    expectTrailersOnly(await h2Call(session, ADMIN, grpcMessage('add'), { authorization: 's3cret' }), 16, denied);
    expectMessage(await h2Call(session, ADMIN, grpcMessage('add'), { authorization: 'Bearer s3cret' }), 'add');
    expectMessage(await h2Call(session, ECHO, grpcMessage('open')), 'open');
    expect(lean.guard.openCalls).toBe(0);
  });
});

// --- relay to grpc-js ----------------------------------------------------------------------------------------------

const identity = (b: Buffer) => b;
function method(path: string, responseStream: boolean): MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: false,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}
const STREAM = '/test.Backend/Stream';
const UNARY = '/test.Backend/Unary';

describe('LeanGrpcServer: what it does not serve is relayed to grpc-js', () => {
  let backend: Server;
  let backendAddress = '';
  beforeAll(async () => {
    backend = new Server();
    backend.addService(
      { Stream: method(STREAM, true), Unary: method(UNARY, false), Echo: method(ECHO, false) },
      {
        Stream: (call: any) => {
          for (let i = 0; i < Number(call.request.toString()); i++) call.write(Buffer.from(`part-${i}`));
          const trailer = new Metadata();
          trailer.set('x-trailer', call.request.toString() === '0' ? 'b'.repeat(20_000) : 'relayed');
          call.end(trailer);
        },
        Unary: (call: any, done: any) => done(null, Buffer.concat([Buffer.from('unary:'), call.request])),
        // The same path as the lean ECHO: an answer from here proves the call was relayed.
        Echo: (call: any, done: any) => done(null, Buffer.concat([Buffer.from('grpc-js:'), call.request])),
      },
    );
    const port = await new Promise<number>((resolve, reject) =>
      backend.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    backendAddress = `127.0.0.1:${port}`;
  });
  afterAll(() => backend.forceShutdown());

  async function grpcClient(options: Record<string, number> = {}): Promise<Client> {
    const lean = await startLean(cleanup, { backend: backendAddress });
    const client = new Client(`127.0.0.1:${lean.port}`, credentials.createInsecure(), options);
    cleanup.add(() => client.close());
    return client;
  }
  const unary = (client: Client, path: string, text: string) =>
    new Promise<{ err: ServiceError | null; value?: Buffer }>((resolve) =>
      client.makeUnaryRequest(path, identity, identity, Buffer.from(text), (err, value) => resolve({ err, value })),
    );

  it('relays a server-streaming call: every message, then the trailers', async () => {
    const client = await grpcClient();
    const stream = client.makeServerStreamRequest(STREAM, identity, identity, Buffer.from('5'));
    const messages: string[] = [];
    stream.on('data', (m: Buffer) => messages.push(m.toString()));
    const status = await new Promise<any>((resolve) => stream.on('status', resolve));
    expect(messages).toEqual(['part-0', 'part-1', 'part-2', 'part-3', 'part-4']);
    expect(status.code).toBe(0);
    expect(status.metadata.get('x-trailer')).toEqual(['relayed']);
  });

  it('relays a header block larger than the client frame size as HEADERS + CONTINUATION (§6.10)', async () => {
    const lean = await startLean(cleanup, { backend: backendAddress });
    const c = await RawClient.connect(lean.port, cleanup);
    c.handshake();
    c.request(1, STREAM, '0'); // no message: grpc-js answers trailers-only, with a 20 KB trailer
    const end = await c.next((f) => f.type === T.CONTINUATION && (f.flags & END_HEADERS) !== 0, 'CONTINUATION');
    // END_STREAM is on the HEADERS frame, END_HEADERS on the last CONTINUATION (§8.1, §6.10).
    const blocks = c.on(1).filter((f) => f.type === T.HEADERS || f.type === T.CONTINUATION);
    expect(blocks.map((f) => [f.type, f.flags, f.payload.length <= 16_384])).toEqual([
      [T.HEADERS, END_STREAM, true],
      [T.CONTINUATION, END_HEADERS, true],
    ]);
    expect(end.fields).toMatchObject({ ':status': '200', 'grpc-status': '0', 'x-trailer': 'b'.repeat(20_000) });
  });

  it('relays a unary call of another path, and one of no service at all (UNIMPLEMENTED from grpc-js)', async () => {
    const client = await grpcClient();
    expect((await unary(client, UNARY, 'hi')).value?.toString()).toBe('unary:hi');
    const missing = await unary(client, '/nope.Svc/M', 'hi');
    expect(missing.err?.code).toBe(12);
  });

  it('ends a relayed stream the client never half-closed once answered: trailers, then RST_STREAM NO_ERROR (§8.1)', async () => {
    const lean = await startLean(cleanup, { backend: backendAddress });
    const c = await RawClient.connect(lean.port, cleanup);
    c.handshake();
    // A message, no END_STREAM: grpc-js answers the unknown method at once (trailers-only UNIMPLEMENTED).
    c.send(frame(T.HEADERS, END_HEADERS, 1, requestBlock('/nope.Svc/M')), frame(T.DATA, 0, 1, grpcMessage('x')));
    const rst = await c.next((f) => f.type === T.RST_STREAM, 'RST_STREAM');
    expect([rst.stream, rst.payload.readUInt32BE(0)]).toEqual([1, E.NO_ERROR]);
    const answer = c.frames.filter((f) => f.stream === 1 && f.type === T.HEADERS);
    expect(answer.map((f) => [f.flags & END_STREAM, f.fields?.['grpc-status']])).toEqual([[END_STREAM, '12']]);
    await waitFor(() => lean.guard.openCalls === 0, 'the relayed call to close');
  });

  it('serves identity calls itself and relays gzip-compressed ones (grpc-js client option)', async () => {
    const plain = await grpcClient();
    expect((await unary(plain, ECHO, 'hello')).value?.toString()).toBe('hello');
    const failed = await unary(plain, ECHO, 'fail');
    expect([failed.err?.code, failed.err?.details]).toEqual([3, 'bad %thing é']); // grpc-js percent-decodes
    const gzip = await grpcClient({ 'grpc.default_compression_algorithm': 2 });
    expect((await unary(gzip, ECHO, 'hello')).value?.toString()).toBe('grpc-js:hello');
  });

  it('relays a gzip message sent over node:http2 (grpc-encoding: gzip, Compressed-Flag 1)', async () => {
    const lean = await startLean(cleanup, { backend: backendAddress });
    const session = await openSession(lean.port, cleanup);
    const body = grpcMessage(gzipSync(Buffer.from('zipped')), 1);
    const answer = await h2Call(session, ECHO, body, { 'grpc-encoding': 'gzip' });
    expect(answer.trailers['grpc-status']).toBe('0');
    expect(grpcMessages(answer.data)).toEqual([Buffer.from('grpc-js:zipped')]);
  });
});

describe('LeanGrpcServer: graceful stop', () => {
  it('PINGs, calls draining, GOAWAYs naming the last call, lets it finish, then refuses new connections', async () => {
    const lean = await startLean(cleanup);
    const session = await openSession(lean.port, cleanup);
    const goaway = new Promise<[number, number]>((resolve) =>
      session.on('goaway', (code, last) => resolve([code, last])),
    );
    const call = h2Call(session, HOLD, grpcMessage('last'));
    await waitFor(() => lean.held.length === 1, 'the held call');
    let draining = 0;
    const stopped = lean.server.stop(Date.now() + 2_000, () => draining++);
    expect(await goaway).toEqual([E.NO_ERROR, 1]);
    expect(draining).toBe(1);
    lean.held[0].release(Buffer.from('answered'));
    expectMessage(await call, 'answered');
    expect(await stopped).toBe('drained');
    const refused = await new Promise<string | undefined>((resolve) => {
      const socket = netConnect(lean.port, '127.0.0.1');
      socket.on('connect', () => resolve('connected'));
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code));
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});
