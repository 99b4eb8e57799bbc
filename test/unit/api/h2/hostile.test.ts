/**
 * The lean HTTP/2 server against peers that push: what a hostile or broken client sends must cost it its connection
 * or its stream, never the process or unbounded memory (found in review; compare nghttp2's limits, which node:http2
 * applied before). Real sockets on 127.0.0.1.
 */
import { connect as netConnect, createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import { connect as h2connect } from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { H2Connection } from '../../../../src/api/h2/connection.js';
import {
  Cleanup,
  E,
  ECHO,
  END_HEADERS,
  HOLD,
  PREFACE,
  RawClient,
  T,
  frame,
  goawayOf,
  h2Call,
  grpcMessage,
  openSession,
  requestBlock,
  rstStream,
  settings,
  startLean,
  waitFor,
} from './raw-h2.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function client() {
  const lean = await startLean(cleanup);
  const c = await RawClient.connect(lean.port, cleanup);
  c.handshake();
  return { lean, c };
}

describe('lean HTTP/2 server: hostile peers', () => {
  it('stops reading a peer that floods PINGs and never reads the ACKs: what waits to be sent stays bounded', async () => {
    const server = createServer();
    cleanup.add(() => void server.close());
    let accepted: Socket | null = null;
    server.on('connection', (socket: Socket) => {
      accepted = socket;
      const hooks = {
        stream: () => undefined,
        streamClosed: () => undefined,
        closed: () => undefined,
        error: () => undefined,
      };
      new H2Connection(socket, { maxConcurrentStreams: 10, maxHeaderListBytes: 65_536 }, hooks);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const peer = netConnect(port, '127.0.0.1');
    cleanup.add(() => peer.destroy());
    await once(peer, 'connect');
    peer.pause(); // never reads
    const ping = frame(T.PING, 0, 0, Buffer.alloc(8));
    const batch = Buffer.concat(Array.from({ length: 10_000 }, () => ping));
    peer.write(Buffer.concat([PREFACE, settings()]));
    // 600,000 PINGs (10 MB): their ACKs would be 10 MB waiting on the server without the bound.
    for (let i = 0; i < 60; i++) peer.write(batch);
    await waitFor(() => accepted !== null && accepted.isPaused(), 'the server to stop reading', 20_000);
    // The bound (4 MiB) plus at most one turn's frames past it.
    expect(accepted!.writableLength).toBeLessThan(6 << 20);
  }, 30_000);

  it('ends a connection sending empty CONTINUATION frames without END_HEADERS (PROTOCOL_ERROR)', async () => {
    const { c } = await client();
    const empty = frame(T.CONTINUATION, 0, 1);
    c.send(frame(T.HEADERS, 0, 1, requestBlock(ECHO)), ...Array.from({ length: 8_000 }, () => empty));
    const goaway = await c.next((f) => f.type === T.GOAWAY, 'GOAWAY');
    expect(goawayOf(goaway).code).toBe(E.PROTOCOL_ERROR);
  });

  it('ends a connection that opens and resets calls past the burst of 1,000 (ENHANCE_YOUR_CALM, CVE-2023-44487)', async () => {
    const { lean, c } = await client();
    const parts: Buffer[] = [];
    for (let i = 0; i < 1_100; i++) {
      const id = 1 + 2 * i;
      parts.push(frame(T.HEADERS, END_HEADERS, id, requestBlock(HOLD)), rstStream(id, E.CANCEL));
    }
    c.send(...parts);
    const goaway = await c.next((f) => f.type === T.GOAWAY, 'GOAWAY');
    expect(goawayOf(goaway).code).toBe(0xb);
    await c.waitClosed();
    await waitFor(() => lean.guard.openCalls === 0, 'no call left open');
  });

  it('reserves no memory for a length a prefix announces: 100 calls announcing 4 MiB each and sending 5 bytes', async () => {
    const { lean, c } = await client();
    const before = process.memoryUsage().arrayBuffers;
    const prefix = Buffer.from([0, 0, 0x40, 0, 0]); // 4 MiB announced
    for (let i = 0; i < 100; i++) {
      const id = 1 + 2 * i;
      c.send(frame(T.HEADERS, END_HEADERS, id, requestBlock(HOLD)), frame(T.DATA, 0, id, prefix));
    }
    await c.barrier();
    expect(lean.guard.openCalls).toBe(100);
    // 400 MiB if each announced length were allocated on arrival.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 << 20);
  });

  it('keeps a grpc-timeout beyond a timer range as a deadline, without firing at once (grpc-go sends 2592000S)', async () => {
    const lean = await startLean(cleanup);
    const session = await openSession(lean.port, cleanup);
    const answer = h2Call(session, HOLD, grpcMessage('wait'), { 'grpc-timeout': '2592000S' });
    await waitFor(() => lean.held.length === 1, 'the held call');
    // Not a timing: Node runs timers in order of expiry, so a 1 ms timer set earlier has run before this one.
    await new Promise((r) => setTimeout(r, 20));
    expect(lean.held[0].cancellation.aborted).toBe(false);
    lean.held[0].release(Buffer.from('done'));
    expect((await answer).status).toBe('0');
  });

  it('serves a client whose HPACK table is 0 (the table size update it expects comes first)', async () => {
    const lean = await startLean(cleanup);
    const session = h2connect(`http://127.0.0.1:${lean.port}`, { settings: { headerTableSize: 0 } });
    session.on('error', () => undefined);
    cleanup.add(() => session.destroy());
    await once(session, 'connect');
    const first = await h2Call(session, ECHO, grpcMessage('one'));
    const second = await h2Call(session, ECHO, grpcMessage('two'));
    expect([
      first.status,
      first.data.subarray(5).toString(),
      second.status,
      second.data.subarray(5).toString(),
    ]).toEqual(['0', 'one', '0', 'two']);
  });

  it('stops at once past a connection that never sent its preface: drained, not forced', async () => {
    const lean = await startLean(cleanup);
    const silent = netConnect(lean.port, '127.0.0.1');
    cleanup.add(() => silent.destroy());
    await once(silent, 'connect');
    const session = await openSession(lean.port, cleanup);
    expect((await h2Call(session, ECHO, grpcMessage('x'))).status).toBe('0');
    let draining = 0;
    // Before, the silent socket held the PING phase to the deadline and was still open after it: 'forced'.
    const outcome = await lean.server.stop(Date.now() + 10_000, () => draining++);
    expect([outcome, draining]).toEqual(['drained', 1]);
  });
});
