/**
 * The HTTP/2 layer of the lean gRPC server (src/api/h2/connection.ts, sender.ts) against RFC 9113, with a raw TCP
 * client writing hand-made frames and reading the server's frame by frame: the connection preface and SETTINGS,
 * PING, connection errors (GOAWAY with the code, then close: §5.4.1), stream errors (RST_STREAM: §5.4.2), requests
 * in pieces (DATA, CONTINUATION, padding, priority) and flow control both ways (§5.2, §6.9).
 */
import { createServer, type Server as NetServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { H2Connection, type ConnectionHooks } from '../../../../src/api/h2/connection.js';
import { literalWithoutIndexing } from '../../../../src/api/h2/hpack.js';
import type { H2Stream } from '../../../../src/api/h2/stream.js';
import {
  ACK,
  Cleanup,
  E,
  ECHO,
  END_HEADERS,
  END_STREAM,
  HOLD,
  LENGTH,
  MAX_WINDOW,
  PADDED,
  PREFACE,
  PRIORITY_FLAG,
  RawClient,
  S,
  T,
  frame,
  goawayOf,
  grpcMessage,
  requestBlock,
  rstStream,
  settings,
  startLean,
  u32,
  waitFor,
  windowUpdate,
  type Frame,
} from './raw-h2.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function client(limits: Parameters<typeof startLean>[1] = {}) {
  const lean = await startLean(cleanup, limits);
  return { lean, c: await RawClient.connect(lean.port, cleanup) };
}

/** The answer on `stream` of the ECHO/LENGTH methods: HEADERS :status 200, one DATA message, OK trailers last. */
function expectAnswer(c: RawClient, stream: number, message: string): void {
  const frames = c.on(stream).filter((f) => f.type === T.HEADERS || f.type === T.DATA);
  expect(frames[0].fields).toEqual({ ':status': '200', 'content-type': 'application/grpc+proto' });
  // As hex strings: vitest compares large Buffers element by element, slowly.
  expect(c.data(stream).toString('hex')).toBe(grpcMessage(message).toString('hex'));
  const last = frames[frames.length - 1];
  expect([last.type, last.flags & END_STREAM]).toEqual([T.HEADERS, END_STREAM]);
  expect(last.fields).toEqual({ 'grpc-status': '0', 'grpc-message': 'OK' });
}
const trailersOn = (stream: number) => (f: Frame) => f.stream === stream && (f.flags & END_STREAM) !== 0;

describe('H2 connection: preface, SETTINGS and PING (RFC 9113 §3.4, §6.5, §6.7)', () => {
  it('sends its SETTINGS and a connection WINDOW_UPDATE first, and ACKs the client SETTINGS exactly once', async () => {
    const { c } = await client({ limits: { maxConcurrentStreams: 7 } });
    c.handshake();
    await c.barrier();
    const [first, second] = c.frames;
    expect([first.type, first.flags, first.stream]).toEqual([T.SETTINGS, 0, 0]);
    const pairs = Array.from({ length: first.payload.length / 6 }, (_, i) => [
      first.payload.readUInt16BE(6 * i),
      first.payload.readUInt32BE(6 * i + 2),
    ]);
    // MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE 1 MiB, MAX_HEADER_LIST_SIZE 64 KiB, ENABLE_PUSH 0.
    expect(pairs).toEqual([
      [3, 7],
      [4, 1 << 20],
      [6, 64 << 10],
      [2, 0],
    ]);
    // The connection window (65,535 at first, §6.9.2) raised to 16 MiB.
    expect([second.type, second.stream, second.payload.readUInt32BE(0)]).toEqual([
      T.WINDOW_UPDATE,
      0,
      (16 << 20) - 65_535,
    ]);
    const acks = c.frames.filter((f) => f.type === T.SETTINGS && f.flags === ACK);
    expect(acks.map((f) => f.payload.length)).toEqual([0]);
  });

  it('answers a PING with a PING ACK carrying the same 8 bytes', async () => {
    const { c } = await client();
    c.handshake();
    c.send(frame(T.PING, 0, 0, Buffer.from('8 bytes!')));
    const ack = await c.next((f) => f.type === T.PING, 'PING ACK');
    expect([ack.flags, ack.stream, ack.payload.toString()]).toEqual([ACK, 0, '8 bytes!']);
  });

  it('ignores frames of unknown type and PRIORITY frames (§4.1, §5.5, §6.3)', async () => {
    const { c } = await client();
    c.handshake();
    c.send(frame(0xfa, 0xff, 0, Buffer.from('extension')), frame(T.PRIORITY, 0, 1, Buffer.from([0, 0, 0, 0, 16])));
    c.request(1, ECHO, 'after');
    await c.next(trailersOn(1), 'the answer');
    expectAnswer(c, 1, 'after');
  });
});

describe('H2 connection errors: GOAWAY with the error code, then close (§5.4.1)', () => {
  const EH_ES = END_HEADERS | END_STREAM;
  const x = Buffer.from('x');
  const x8 = Buffer.alloc(8);
  const hold = frame(T.HEADERS, END_HEADERS, 1, requestBlock(HOLD));
  /** [what, code, bytes sent, { raw: no preface and SETTINGS first; last: the stream the GOAWAY names (§6.8) }] */
  type Case = [string, number, Buffer[], { raw?: boolean; last?: number }?];
  const cases: Case[] = [
    ['a wrong preface (§3.4)', E.PROTOCOL_ERROR, [Buffer.from('GET / HTTP/1.1\r\n\r\n')], { raw: true }],
    ['a first frame other than SETTINGS (§3.4)', E.PROTOCOL_ERROR, [PREFACE, frame(T.PING, 0, 0, x8)], { raw: true }],
    ['a frame over 16,384 bytes (§4.2)', E.FRAME_SIZE_ERROR, [frame(T.DATA, 0, 1, Buffer.alloc(16_385))]],
    ['HEADERS on an even stream (§5.1.1)', E.PROTOCOL_ERROR, [frame(T.HEADERS, EH_ES, 2, requestBlock(ECHO))]],
    ['an HPACK index 0 (RFC 7541 §6.1)', E.COMPRESSION_ERROR, [frame(T.HEADERS, EH_ES, 1, Buffer.from([0x80]))]],
    ['WINDOW_UPDATE of 0 on the connection (§6.9)', E.PROTOCOL_ERROR, [windowUpdate(0, 0)]],
    ['a connection window over 2^31-1 (§6.9.1)', E.FLOW_CONTROL_ERROR, [windowUpdate(0, MAX_WINDOW)]],
    ['INITIAL_WINDOW_SIZE over 2^31-1 (§6.5.2)', E.FLOW_CONTROL_ERROR, [settings([[S.INITIAL_WINDOW_SIZE, 2 ** 31]])]],
    ['MAX_FRAME_SIZE under 16,384 (§6.5.2)', E.PROTOCOL_ERROR, [settings([[S.MAX_FRAME_SIZE, 16_383]])]],
    ['SETTINGS on a stream (§6.5)', E.PROTOCOL_ERROR, [frame(T.SETTINGS, 0, 1)]],
    ['a PING of 4 bytes (§6.7)', E.FRAME_SIZE_ERROR, [frame(T.PING, 0, 0, u32(1))]],
    ['DATA on stream 0 (§6.1)', E.PROTOCOL_ERROR, [frame(T.DATA, 0, 0, x)]],
    ['DATA on an idle stream (§5.1)', E.PROTOCOL_ERROR, [frame(T.DATA, 0, 1, x)]],
    ['RST_STREAM on an idle stream (§6.4)', E.PROTOCOL_ERROR, [rstStream(3, E.CANCEL)]],
    ['WINDOW_UPDATE on an idle stream (§5.1)', E.PROTOCOL_ERROR, [windowUpdate(3, 10)]],
    ['a client PUSH_PROMISE (§8.4)', E.PROTOCOL_ERROR, [frame(T.PUSH_PROMISE, END_HEADERS, 1, u32(2))]],
    [
      'a frame between HEADERS and its CONTINUATION (§6.10)',
      E.PROTOCOL_ERROR,
      [frame(T.HEADERS, 0, 1, requestBlock(ECHO)), frame(T.PING, 0, 0, x8)],
    ],
    [
      'an INITIAL_WINDOW_SIZE change taking an open stream window over 2^31-1 (§6.9.2)',
      E.FLOW_CONTROL_ERROR,
      [hold, windowUpdate(1, MAX_WINDOW - 65_535), settings([[S.INITIAL_WINDOW_SIZE, 65_536]])],
      { last: 1 },
    ],
  ];
  it.each(cases)('%s: GOAWAY code %i', async (_what, code, bytes, { raw = false, last = 0 } = {}) => {
    const { c } = await client();
    if (!raw) c.handshake();
    c.send(...bytes);
    const goaway = await c.next((f) => f.type === T.GOAWAY, 'GOAWAY');
    expect([goaway.stream, goawayOf(goaway)]).toEqual([0, { last, code }]);
    await c.waitClosed();
  });
});

describe('H2 stream errors: RST_STREAM, and the connection goes on (§5.4.2)', () => {
  /** A HOLD call on stream 1, then `send`: the stream gets RST_STREAM `code`, the call closes, the connection serves on. */
  async function streamError(send: (c: RawClient) => void, code: number) {
    const { lean, c } = await client();
    c.handshake();
    c.send(frame(T.HEADERS, END_HEADERS, 1, requestBlock(HOLD)));
    await waitFor(() => lean.guard.openCalls === 1, 'the open call');
    send(c);
    const rst = await c.next((f) => f.type === T.RST_STREAM, 'RST_STREAM');
    expect([rst.stream, rst.payload.readUInt32BE(0)]).toEqual([1, code]);
    await waitFor(() => lean.guard.openCalls === 0, 'the call to close');
    c.request(3, ECHO, 'still serving');
    await c.next(trailersOn(3), 'the next answer');
    expectAnswer(c, 3, 'still serving');
    expect(c.frames.filter((f) => f.type === T.GOAWAY)).toEqual([]);
  }

  it('WINDOW_UPDATE of 0 on a stream: PROTOCOL_ERROR (§6.9)', () =>
    streamError((c) => c.send(windowUpdate(1, 0)), E.PROTOCOL_ERROR));
  it('a stream window over 2^31-1: FLOW_CONTROL_ERROR (§6.9.1)', () =>
    streamError((c) => c.send(windowUpdate(1, MAX_WINDOW)), E.FLOW_CONTROL_ERROR));
  it('a second header block without END_STREAM: PROTOCOL_ERROR (§8.1)', () =>
    streamError(
      (c) => c.send(frame(T.HEADERS, END_HEADERS, 1, literalWithoutIndexing('x-late', '1'))),
      E.PROTOCOL_ERROR,
    ));
  it('DATA after END_STREAM (half-closed remote): STREAM_CLOSED (§5.1)', () =>
    streamError(
      (c) => c.send(frame(T.DATA, END_STREAM, 1, grpcMessage('x')), frame(T.DATA, 0, 1, Buffer.from('more'))),
      E.STREAM_CLOSED,
    ));

  it('refuses a stream beyond SETTINGS_MAX_CONCURRENT_STREAMS with REFUSED_STREAM (§5.1.2)', async () => {
    const { lean, c } = await client({ limits: { maxConcurrentStreams: 2 } });
    c.handshake();
    for (const id of [1, 3, 5]) c.send(frame(T.HEADERS, END_HEADERS, id, requestBlock(HOLD)));
    const rst = await c.next((f) => f.type === T.RST_STREAM, 'RST_STREAM');
    expect([rst.stream, rst.payload.readUInt32BE(0)]).toEqual([5, E.REFUSED_STREAM]);
    expect(lean.guard.openCalls).toBe(2);
  });

  it.each([
    ['without :scheme', [':method', 'POST', ':path', ECHO, 'content-type', 'application/grpc']],
    ['with an uppercase field name', [':method', 'POST', ':scheme', 'http', ':path', ECHO, 'X-Upper', '1']],
    ['with an empty :path', [':method', 'POST', ':scheme', 'http', ':path', '']],
  ])('a malformed request (%s) is reset PROTOCOL_ERROR and never served (§8.1.1, §8.2.1, §8.3.1)', async (_w, f) => {
    const { lean, c } = await client();
    c.handshake();
    const fields: Buffer[] = [];
    for (let i = 0; i < f.length; i += 2) fields.push(literalWithoutIndexing(f[i], f[i + 1]));
    c.send(frame(T.HEADERS, END_HEADERS, 1, Buffer.concat(fields)), frame(T.DATA, END_STREAM, 1, grpcMessage('x')));
    const rst = await c.next((fr) => fr.type === T.RST_STREAM, 'RST_STREAM');
    expect([rst.stream, rst.payload.readUInt32BE(0)]).toEqual([1, E.PROTOCOL_ERROR]);
    expect(lean.guard.openCalls).toBe(0);
    c.request(3, ECHO, 'still serving');
    await c.next(trailersOn(3), 'the next answer');
    expectAnswer(c, 3, 'still serving');
  });

  it('a client RST_STREAM (CANCEL) cancels the operation and nothing more is written on the stream', async () => {
    const { lean, c } = await client();
    c.handshake();
    c.request(1, HOLD, 'wait');
    await waitFor(() => lean.held.length === 1, 'the held call');
    c.send(rstStream(1, E.CANCEL));
    await waitFor(() => lean.held[0].abortedSeen, 'the operation to see aborted');
    await c.barrier();
    expect(c.on(1)).toEqual([]);
    expect(lean.guard.openCalls).toBe(0);
  });
});

describe('H2 requests in pieces (§6.1, §6.2, §6.10)', () => {
  it('serves a message split over several DATA frames, its 5-byte prefix split too', async () => {
    const { c } = await client();
    c.handshake();
    const body = grpcMessage('split over four frames');
    c.send(frame(T.HEADERS, END_HEADERS, 1, requestBlock(ECHO)));
    for (const [from, to] of [
      [0, 2],
      [2, 5],
      [5, 12],
    ])
      c.send(frame(T.DATA, 0, 1, body.subarray(from, to)));
    c.send(frame(T.DATA, END_STREAM, 1, body.subarray(12)));
    await c.next(trailersOn(1), 'the answer');
    expectAnswer(c, 1, 'split over four frames');
  });

  it('serves a header block split over HEADERS and two CONTINUATION frames', async () => {
    const { c } = await client();
    c.handshake();
    const block = requestBlock(ECHO, [['x-long', 'v'.repeat(300)]]);
    c.send(
      frame(T.HEADERS, 0, 1, block.subarray(0, 10)),
      frame(T.CONTINUATION, 0, 1, block.subarray(10, 200)),
      frame(T.CONTINUATION, END_HEADERS, 1, block.subarray(200)),
      frame(T.DATA, END_STREAM, 1, grpcMessage('continued')),
    );
    await c.next(trailersOn(1), 'the answer');
    expectAnswer(c, 1, 'continued');
  });

  it('serves PADDED DATA and HEADERS with the PADDED and PRIORITY flags', async () => {
    const { c } = await client();
    c.handshake();
    const pad = (content: Buffer, n: number) => Buffer.concat([Buffer.from([n]), content, Buffer.alloc(n)]);
    const priority = Buffer.from([0x80, 0, 0, 0, 200]); // exclusive, depends on stream 0, weight 201
    const headers = pad(Buffer.concat([priority, requestBlock(ECHO)]), 7);
    c.send(frame(T.HEADERS, END_HEADERS | PADDED | PRIORITY_FLAG, 1, headers));
    c.send(frame(T.DATA, PADDED, 1, pad(grpcMessage('padded').subarray(0, 6), 20)));
    c.send(frame(T.DATA, PADDED | END_STREAM, 1, pad(grpcMessage('padded').subarray(6), 0)));
    await c.next(trailersOn(1), 'the answer');
    expectAnswer(c, 1, 'padded');
  });

  it('takes a request larger than the 1 MiB stream window, crediting it with WINDOW_UPDATEs (§6.9)', async () => {
    const { c } = await client();
    c.handshake();
    await c.next((f) => f.type === T.WINDOW_UPDATE && f.stream === 0, 'the server connection window');
    const body = grpcMessage(Buffer.alloc(3 << 19, 7)); // 1.5 MiB
    c.send(frame(T.HEADERS, END_HEADERS, 1, requestBlock(LENGTH)));
    // This client never sends beyond the windows the server granted: a server that did not credit would hang it.
    const room = (sent: number) => Math.min(65_535 + c.credit(0), (1 << 20) + c.credit(1)) - sent;
    for (let sent = 0; sent < body.length;) {
      if (room(sent) <= 0) await waitFor(() => room(sent) > 0, 'a WINDOW_UPDATE');
      const n = Math.min(room(sent), 16_384, body.length - sent);
      c.send(frame(T.DATA, sent + n === body.length ? END_STREAM : 0, 1, body.subarray(sent, sent + n)));
      sent += n;
    }
    await c.next(trailersOn(1), 'the answer');
    expectAnswer(c, 1, String(3 << 19));
    // 96 full 16,384-byte frames before the 5-byte last one: six credits of 256 KiB, the last before the answer.
    expect(c.credit(1)).toBe(6 * (256 << 10));
  });
});

describe('H2 flow control when sending (§6.9, §6.5.2)', () => {
  it('sends a 1,000-byte answer in DATA of at most 100 bytes, each after the client WINDOW_UPDATE, trailers last', async () => {
    const { c } = await client();
    c.handshake([[S.INITIAL_WINDOW_SIZE, 100]]);
    c.request(1, ECHO, 'y'.repeat(1_000));
    const total = 1_005;
    for (let granted = 100; ; granted += 100) {
      await waitFor(() => c.data(1).length === Math.min(granted, total), `${granted} bytes`);
      await c.barrier(); // whatever the server would send now has arrived: nothing beyond the window
      expect(c.data(1).length).toBe(Math.min(granted, total));
      if (granted >= total) break;
      expect(c.frames.find(trailersOn(1))).toBeUndefined();
      c.send(windowUpdate(1, 100));
    }
    await c.next(trailersOn(1), 'the trailers');
    const data = c.on(1).filter((f) => f.type === T.DATA);
    expect(data.map((f) => f.payload.length)).toEqual([...Array(10).fill(100), 5]);
    expect(c.on(1).map((f) => f.type)).toEqual([T.HEADERS, ...Array(11).fill(T.DATA), T.HEADERS]);
    expectAnswer(c, 1, 'y'.repeat(1_000));
  });

  it('holds DATA at the connection window until a connection WINDOW_UPDATE', async () => {
    const { c } = await client();
    c.handshake([[S.INITIAL_WINDOW_SIZE, 1 << 20]]);
    await c.next((f) => f.type === T.WINDOW_UPDATE && f.stream === 0, 'the server connection window');
    c.request(1, ECHO, Buffer.alloc(100_000, 1));
    await waitFor(() => c.data(1).length === 65_535, 'a full connection window');
    await c.barrier();
    expect(c.data(1).length).toBe(65_535);
    c.send(windowUpdate(0, 40_000));
    await c.next(trailersOn(1), 'the trailers');
    expectAnswer(c, 1, Buffer.alloc(100_000, 1).toString());
  });

  it('cuts DATA at the peer SETTINGS_MAX_FRAME_SIZE: 16,384 by default, or what the client sets', async () => {
    for (const [max, sizes] of [
      [16_384, [16_384, 16_384, 7_237]],
      [32_768, [32_768, 7_237]],
    ] as const) {
      const { c } = await client();
      c.handshake(max === 16_384 ? [] : [[S.MAX_FRAME_SIZE, max]]);
      c.request(1, ECHO, 'z'.repeat(40_000));
      await c.next(trailersOn(1), 'the answer');
      expect(c.on(1).flatMap((f) => (f.type === T.DATA ? [f.payload.length] : []))).toEqual(sizes);
      expectAnswer(c, 1, 'z'.repeat(40_000));
    }
  });

  /**
   * An H2Connection of its own (no gRPC on top) whose one stream has sent 100 bytes, then had its window made -50 by
   * the client lowering SETTINGS_INITIAL_WINDOW_SIZE from 100 to 50 (§6.9.2: windows may go below zero).
   */
  async function negativeWindow() {
    const streams: H2Stream[] = [];
    let conn: H2Connection | null = null;
    const hooks: ConnectionHooks = {
      stream: (_conn, s) => void streams.push(s),
      streamClosed: () => undefined,
      closed: () => undefined,
      error: () => undefined,
    };
    const server: NetServer = createServer((socket) => {
      conn = new H2Connection(socket, { maxConcurrentStreams: 10, maxHeaderListBytes: 65_536 }, hooks);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.add(() => new Promise((resolve) => server.close(resolve)));
    cleanup.add(() => conn?.destroy());
    const c = await RawClient.connect((server.address() as { port: number }).port, cleanup);
    c.handshake([[S.INITIAL_WINDOW_SIZE, 100]]);
    c.send(frame(T.HEADERS, END_HEADERS | END_STREAM, 1, requestBlock(ECHO)));
    await waitFor(() => streams.length === 1, 'the stream');
    const stream = streams[0];
    conn!.sendHeaders(stream, literalWithoutIndexing(':status', '200'), false);
    conn!.sendData(stream, Buffer.alloc(100, 1), false);
    await waitFor(() => c.data(1).length === 100, 'the first 100 bytes');
    c.send(settings([[S.INITIAL_WINDOW_SIZE, 50]]));
    await c.barrier();
    return { c, conn: conn!, stream };
  }
  const shape = (c: RawClient) => c.on(1).map((f) => [f.type, f.payload.length, f.flags]);

  it('after a SETTINGS change makes a stream window negative, sends DATA only once it is positive (§6.9.2)', async () => {
    const { c, conn, stream } = await negativeWindow();
    conn.sendData(stream, Buffer.alloc(10, 2), false);
    conn.sendData(stream, Buffer.alloc(0), true); // waits behind the queued DATA
    c.send(windowUpdate(1, 55)); // -50 + 55 = 5
    await c.barrier();
    expect(c.data(1)).toEqual(Buffer.concat([Buffer.alloc(100, 1), Buffer.alloc(5, 2)]));
    c.send(windowUpdate(1, 5));
    await c.next(trailersOn(1), 'END_STREAM');
    expect(shape(c)).toEqual([
      [T.HEADERS, 5, END_HEADERS],
      [T.DATA, 100, 0],
      [T.DATA, 5, 0],
      [T.DATA, 5, 0],
      [T.DATA, 0, END_STREAM],
    ]);
  });

  it('sends an empty DATA with END_STREAM at once, even with the stream window negative (§6.9.1)', async () => {
    // A zero-length DATA frame consumes no window (how the relay ends a stream that had no trailers).
    const { c, conn, stream } = await negativeWindow();
    conn.sendData(stream, Buffer.alloc(0), true);
    await c.next(trailersOn(1), 'END_STREAM');
    expect(shape(c)).toEqual([
      [T.HEADERS, 5, END_HEADERS],
      [T.DATA, 100, 0],
      [T.DATA, 0, END_STREAM],
    ]);
  });
});
