import { connect as http2Connect, constants, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../support/service.js';
import { tokenRange } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen3-8B';
const closed = (s: { once(e: 'close', f: () => void): unknown }) =>
  new Promise<void>((r) => s.once('close', () => r()));

// Every limit holds on both servers of the gRPC address: the lean HTTP/2 server (default) and node:http2 + grpc-js.
describe.each([true, false])('api.leanHttp2=%s', (leanHttp2) => {
  /**
   * Issue 17 bug 5, HTTP/2 hygiene, with small limits so that the test runs in seconds: sockets that never handshake,
   * a client holding many streams open and never reading, and a connection left with nothing on it are reclaimed by the
   * server (its own socket count returns to the baseline), while another client's Score keeps answering. Before the fix
   * (grpc-js defaults: no idle or age limit, no handshake deadline, no connection bound) none of them was ever closed.
   */
  describe('gRPC connection hygiene', () => {
    let svc: TestService;

    beforeAll(async () => {
      svc = await startTestService({
        overrides: {
          api: {
            leanHttp2,
            maxConnectionIdleMs: 1_500,
            maxConnectionAgeMs: 2_500,
            maxConnectionAgeGraceMs: 300,
            maxConcurrentStreams: 16,
            maxConnections: 40,
            handshakeTimeoutMs: 300,
          },
        },
      });
    }, 30_000);

    afterAll(async () => {
      await svc?.stop();
    });

    const score = () =>
      svc.kv.call(
        'Score',
        { model: MODEL, tokens: { tokenIds: tokenRange(64) }, candidates: ['10.0.0.1:8000'] },
        3_000,
      );
    const connections = () => svc.api.grpc.connections();

    async function settlesTo(count: number, timeoutMs: number): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      let now = await connections();
      while (now !== count && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        now = await connections();
      }
      expect(now).toBe(count);
    }

    it('closes sockets that never finish the handshake', async () => {
      await settlesTo(0, 5_000);
      // 30 sockets, under maxConnections (40): every one is accepted and closed by the handshake timeout, none refused.
      const sockets: Socket[] = [];
      for (let i = 0; i < 30; i++)
        sockets.push(
          netConnect(svc.api.grpcPort, '127.0.0.1')
            .on('error', () => undefined)
            .resume(),
        ); // reads, never writes
      await Promise.all(sockets.map(closed));
      expect([svc.api.grpc.guard.handshakeTimeouts, svc.api.grpc.guard.refused]).toEqual([30, 0]);
      await settlesTo(0, 2_000);
    });

    it('many held streams and a never-reading client do not stop another client; their connections are reclaimed', async () => {
      const hostile: ClientHttp2Session[] = [];
      let refusedStreams = 0;
      for (let c = 0; c < 4; c++) {
        const session = http2Connect(`http://127.0.0.1:${svc.api.grpcPort}`);
        session.on('error', () => undefined);
        hostile.push(session);
        // 200 Score calls per connection that send headers and never a message nor END_STREAM: each holds a handler
        // slot until the connection goes. Beyond maxConcurrentStreams they are refused.
        for (let i = 0; i < 200; i++) {
          try {
            const stream = session.request({
              [constants.HTTP2_HEADER_METHOD]: 'POST',
              [constants.HTTP2_HEADER_PATH]: '/kvindexer.v1.KvIndexer/Score',
              'content-type': 'application/grpc',
              te: 'trailers',
            });
            stream.on('error', () => refusedStreams++);
            stream.pause(); // never reads
          } catch {
            refusedStreams++;
          }
        }
      }
      // A session that only says hello (its SETTINGS) and then nothing: the idle timeout reaps it.
      const idle = http2Connect(`http://127.0.0.1:${svc.api.grpcPort}`);
      idle.on('error', () => undefined);
      await new Promise<void>((r) => idle.once('remoteSettings', () => r()));
      hostile.push(idle);

      // Another client is served, with the exact answer, while those connections are open.
      const answers = [];
      for (let i = 0; i < 20; i++) answers.push(await score());
      expect(answers.map((a) => [a.totalBlocks, a.scores[0].matchedBlocks])).toEqual(
        Array.from({ length: 20 }, () => [4, 0]),
      );
      expect(refusedStreams).toBeGreaterThan(0); // streams beyond 16 per connection were not accepted
      expect(await connections()).toBeGreaterThanOrEqual(5);

      // Held streams keep their connections busy (not idle): the maximum age closes them, the idle one goes first.
      await Promise.all(hostile.map(closed));
      await settlesTo(0, 5_000);
      // The well-behaved client reconnects transparently.
      expect((await score()).totalBlocks).toBe(4);
    }, 20_000);
  });

  /**
   * The two server-wide bounds, each with an exact count: connections (api.maxConnections) and open calls
   * (api.maxOpenCalls). The handshake timeout is long here so that the sockets held open stay open while the extra ones
   * arrive: the split between "refused" and "timed out" is then exact, not a race with the clock.
   */
  describe('gRPC server-wide bounds', () => {
    let svc: TestService;

    beforeAll(async () => {
      svc = await startTestService({
        overrides: { api: { leanHttp2, maxConnections: 8, handshakeTimeoutMs: 10_000, maxOpenCalls: 5 } },
      });
    }, 30_000);

    afterAll(async () => {
      await svc?.stop();
    });

    const score = () =>
      svc.kv.call(
        'Score',
        { model: MODEL, tokens: { tokenIds: tokenRange(64) }, candidates: ['10.0.0.1:8000'] },
        3_000,
      );

    async function until(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
      for (const deadline = Date.now() + timeoutMs; !(await check()) && Date.now() < deadline;)
        await new Promise((r) => setTimeout(r, 20));
    }

    it('refuses connections beyond maxConnections at once, exactly those', async () => {
      await score(); // the test client's own connection: 1 of 8
      const first: Socket[] = [];
      for (let i = 0; i < 7; i++)
        first.push(
          netConnect(svc.api.grpcPort, '127.0.0.1')
            .on('error', () => undefined)
            .resume(),
        );
      await until(async () => (await svc.api.grpc.connections()) === 8, 5_000);
      expect(await svc.api.grpc.connections()).toBe(8);
      const extra: Socket[] = [];
      for (let i = 0; i < 5; i++)
        extra.push(
          netConnect(svc.api.grpcPort, '127.0.0.1')
            .on('error', () => undefined)
            .resume(),
        );
      await Promise.all(extra.map(closed));
      expect([svc.api.grpc.guard.refused, svc.api.grpc.guard.handshakeTimeouts]).toEqual([5, 0]);
      for (const s of first) s.destroy();
      await until(async () => (await svc.api.grpc.connections()) === 1, 5_000);
      expect(await svc.api.grpc.connections()).toBe(1);
    });

    it('at maxOpenCalls the connection holding the most calls pays: its oldest is reset, or its new call refused', async () => {
      const session = http2Connect(`http://127.0.0.1:${svc.api.grpcPort}`);
      session.on('error', () => undefined);
      const open = () => {
        const stream = session.request({
          [constants.HTTP2_HEADER_METHOD]: 'POST',
          [constants.HTTP2_HEADER_PATH]: '/kvindexer.v1.KvIndexer/Score',
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        stream.on('error', () => undefined);
        return stream; // headers sent, never a message nor END_STREAM
      };
      const held = Array.from({ length: 5 }, open);
      await until(() => svc.api.grpc.guard.openCalls === 5, 5_000);
      expect(svc.api.grpc.guard.openCalls).toBe(5);

      // A call from another connection (holding none) is admitted: the hostile connection's oldest call is reset.
      const oldestReset = new Promise<number>((r) => held[0].once('close', () => r(held[0].rstCode ?? -1)));
      expect((await score()).totalBlocks).toBe(4);
      expect(await oldestReset).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      expect([svc.api.grpc.guard.callsEvicted, svc.api.grpc.guard.callsRefused]).toEqual([1, 0]);
      await until(() => svc.api.grpc.guard.openCalls === 4, 5_000);

      // The hostile connection fills the bound again; its next call is the one refused, with a message naming the setting.
      held.push(open());
      await until(() => svc.api.grpc.guard.openCalls === 5, 5_000);
      const refused = open();
      const headers = await new Promise<Record<string, unknown>>((r) =>
        refused.once('response', (h) => r(h as Record<string, unknown>)),
      );
      expect([headers['grpc-status'], headers['grpc-message']]).toEqual([
        '8',
        'server holds 5 open calls (api.maxOpenCalls); retry later',
      ]);
      expect([svc.api.grpc.guard.callsEvicted, svc.api.grpc.guard.callsRefused, svc.api.grpc.guard.openCalls]).toEqual([
        1, 1, 5,
      ]);
      const metrics = await (await fetch(`http://127.0.0.1:${svc.api.metricsPort}/metrics`)).text();
      expect(metrics).toContain('kv_indexer_grpc_open_calls 5');
      expect(metrics).toContain('kv_indexer_grpc_calls_refused_total{reason="max_open_calls"} 1');
      expect(metrics).toContain('kv_indexer_grpc_calls_refused_total{reason="evicted_fair_share"} 1');

      // The held calls end (the client cancels them): their slots come back.
      for (const stream of held) stream.close(constants.NGHTTP2_CANCEL);
      await until(() => svc.api.grpc.guard.openCalls === 0, 5_000);
      expect(svc.api.grpc.guard.openCalls).toBe(0);
      expect((await score()).totalBlocks).toBe(4);
      session.close();
    });
  });

  /**
   * The idle timeout counts every call, the fast Score path's too (fast-score.ts serves Score without grpc-js seeing the
   * stream). Before the fix grpc-js applied the timeout with its own count, which never saw a fast-path call: a
   * connection carrying only Score calls was closed maxConnectionIdleMs after it opened, however busy. Here one raw
   * HTTP/2 connection sends a Score call every 100 ms (a tenth of the idle timeout, so a slow moment of the machine does
   * not make it idle) for 3× the idle timeout and must stay the same connection; once it stops, the idle timeout
   * closes it.
   */
  describe('gRPC idle timeout with the fast Score path', () => {
    const IDLE_MS = 1_000;
    let svc: TestService;

    beforeAll(async () => {
      svc = await startTestService({
        overrides: { api: { leanHttp2, maxConnectionIdleMs: IDLE_MS, fastScore: true } },
      });
    }, 30_000);

    afterAll(async () => {
      await svc?.stop();
    });

    it('keeps a connection busy with Score calls open and closes it once idle', async () => {
      const serialize = (
        svc.kv.client.constructor as unknown as { service: { Score: { requestSerialize(r: object): Buffer } } }
      ).service.Score.requestSerialize;
      const body = serialize({ model: MODEL, tokens: { tokenIds: tokenRange(64) }, candidates: ['10.0.0.1:8000'] });
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body]);
      frame.writeUInt32BE(body.length, 1);
      const session = http2Connect(`http://127.0.0.1:${svc.api.grpcPort}`);
      session.on('error', () => undefined);
      let goaway = false;
      session.on('goaway', () => (goaway = true));
      const call = () =>
        new Promise<string>((resolve, reject) => {
          const req = session.request({
            ':method': 'POST',
            ':path': '/kvindexer.v1.KvIndexer/Score',
            'content-type': 'application/grpc',
            te: 'trailers',
          });
          let status = '';
          req.on('trailers', (t) => (status = String(t['grpc-status'])));
          req.on('error', reject);
          req.on('close', () => resolve(status));
          req.resume();
          req.end(frame);
        });

      const opened = Date.now();
      const statuses: string[] = [];
      while (Date.now() - opened < 3 * IDLE_MS) {
        statuses.push(await call());
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(statuses.length).toBeGreaterThanOrEqual(10);
      expect(new Set(statuses)).toEqual(new Set(['0']));
      expect([goaway, session.closed]).toEqual([false, false]);
      // Idle from now on: the server closes the connection (GOAWAY, then the socket).
      await closed(session);
      expect(goaway).toBe(true);
    }, 20_000);
  });
});
