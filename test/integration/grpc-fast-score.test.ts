import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Publisher } from 'zeromq';
import { ConfigSchema, createLogger } from '../../src/ops/index.js';
import { startThreaded } from '../../src/service/start-threaded.js';
import { grpcClient } from '../support/grpc-client.js';
import { freePort } from '../support/redis-server.js';
import { startTestService } from '../support/service.js';
import { entriesOf, kvMessage, publisherSeenByApi, tokenRange, waitFor, waitForAsync } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen2-VL-2B-Instruct';
const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const C = '10.0.0.3:8000';
const SCORE = '/kvindexer.v1.KvIndexer/Score';
const chat = { messagesJson: JSON.stringify([{ role: 'user', content: 'Which tier holds this prompt?' }]) };

interface Side {
  pub: Publisher;
  /** A grpc-js client passing bytes through, for byte-for-byte comparisons. */
  raw: Client;
  kv: ReturnType<typeof grpcClient>;
  port: number;
  metricsPort: number;
  /** Calls open on the gRPC server now (connection-limits.ts's count). */
  openCalls(): number;
  stop(): Promise<void>;
}

/** A Score call through grpc-js with the request and the response as bytes. */
function scoreBytes(side: Side, body: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    side.raw.makeUnaryRequest(
      SCORE,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      new Metadata(),
      { deadline: Date.now() + 5_000 },
      (err: ServiceError | null, res?: Buffer) => (err ? reject(err) : resolve(res!)),
    ),
  );
}

/** A gRPC call written by hand on a raw HTTP/2 stream: `frame` is the whole DATA payload. */
function h2Call(
  session: ClientHttp2Session,
  frame: Buffer,
  extra: Record<string, string> = {},
  endStream = true,
): Promise<{ status: string; message: string; data: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ':method': 'POST',
      ':path': SCORE,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...extra,
    });
    const chunks: Buffer[] = [];
    let headers: Record<string, unknown> = {};
    req.on('response', (h) => (headers = h));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('trailers', (t) => (headers = { ...headers, ...t }));
    req.on('error', reject);
    // The server's END_STREAM: grpc-js leaves the request side open when it answers before the request ended.
    req.on('end', () => {
      req.close();
      resolve({
        status: String(headers['grpc-status']),
        message: decodeURIComponent(String(headers['grpc-message'] ?? '')),
        data: Buffer.concat(chunks),
      });
    });
    if (endStream) req.end(frame);
    else req.write(frame);
  });
}

const framed = (body: Buffer, flag = 0, length = body.length) =>
  Buffer.concat([Buffer.from([flag, length >>> 24, (length >>> 16) & 255, (length >>> 8) & 255, length & 255]), body]);

/** The histogram count of Score calls with token-id input on the service's /metrics. */
async function scoreCount(side: Side): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${side.metricsPort}/metrics`)).text();
  const m = /^kv_indexer_score_seconds_count\{input="tokens"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

const API = { maxCandidates: 4, maxMessageBytes: 64 * 1024 };

/**
 * The service on this thread (grpc-js, node:http2's fast Score path, or the lean HTTP/2 server), or with
 * api.indexThread (calls handed over as bytes).
 */
async function startSide(fastScore: boolean, indexThread: boolean, leanHttp2 = false): Promise<Side> {
  const zmqAddress = `tcp://127.0.0.1:${await freePort()}`;
  const zmq = { addresses: [zmqAddress] };
  let side: Omit<Side, 'pub' | 'raw'>;
  if (indexThread) {
    const config = ConfigSchema.parse({
      zmq,
      models: { registry: 'fixtures/models/demo.yaml' },
      api: { grpcAddress: '127.0.0.1:0', ...API, fastScore, indexThread, leanHttp2 },
      metrics: { host: '127.0.0.1', port: 0 },
      log: { level: 'silent', statsIntervalSeconds: 0 },
    });
    const served = await startThreaded(config, createLogger('silent'));
    const kv = grpcClient(`127.0.0.1:${served.grpcPort}`, 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer');
    side = {
      kv,
      port: served.grpcPort,
      metricsPort: served.metricsPort,
      openCalls: () => served.front.grpc.guard.openCalls,
      stop: async () => {
        kv.close();
        await served.stop();
      },
    };
  } else {
    const t = await startTestService({ demoModel: true, overrides: { zmq, api: { ...API, fastScore, leanHttp2 } } });
    side = {
      kv: t.kv,
      port: t.api.grpcPort,
      metricsPort: t.api.metricsPort,
      openCalls: () => t.api.grpc.guard.openCalls,
      stop: () => t.stop(),
    };
  }
  const pub = await publisherSeenByApi(zmqAddress, side.kv);
  return { ...side, pub, raw: new Client(`127.0.0.1:${side.port}`, credentials.createInsecure()) };
}

// `on` is node:http2's fast Score path (api.fastScore) or the lean HTTP/2 server (api.leanHttp2), each on the main
// thread and with api.indexThread (every call handed to the index thread as bytes); `off`, the reference, is
// grpc-js's generic server on the main thread.
describe.each([
  { indexThread: false, lean: false },
  { indexThread: true, lean: false },
  { indexThread: false, lean: true },
  { indexThread: true, lean: true },
])(
  'api.fastScore / api.leanHttp2 (%o): Score on a lean path answers exactly as grpc-js does',
  ({ indexThread, lean }) => {
    let off: Side;
    let on: Side;
    let serialize: (req: object) => Buffer;
    let chatTokens: number[];

    /** A: the chat prompt's blocks and 4 token blocks on GPU; B: 2 token blocks, the second also on CPU. */
    const ingest = async (side: Side) => {
      const chatBlocks = Math.floor(chatTokens.length / 16);
      const chatHashes = Array.from({ length: chatBlocks }, (_, i) => BigInt(100 + i));
      await side.pub.send(
        kvMessage(`kv@${A}@${MODEL}`, 0, [
          1,
          [
            ['BlockStored', [11n, 12n, 13n, 14n], null, tokenRange(64), 16, null, null],
            ['BlockStored', chatHashes, null, chatTokens.slice(0, chatBlocks * 16), 16, null, null],
          ],
          null,
        ]),
      );
      await side.pub.send(
        kvMessage(`kv@${B}@${MODEL}`, 0, [
          1,
          [
            ['BlockStored', [21n, 22n], null, tokenRange(32), 16, null, null],
            {
              type: 'BlockStored',
              block_hashes: [22n],
              parent_block_hash: null,
              token_ids: [],
              block_size: 0,
              medium: 'CPU',
            },
          ],
          null,
        ]),
      );
      await waitForAsync(
        async () => (await entriesOf(side.kv, A)) === 4 + chatBlocks && (await entriesOf(side.kv, B)) === 3,
        'events indexed',
      );
    };

    beforeAll(async () => {
      [off, on] = await Promise.all([startSide(false, false), startSide(true, indexThread, lean)]);
      const ctor = off.kv.client.constructor as unknown as {
        service: { Score: { requestSerialize(r: object): Buffer } };
      };
      serialize = (req) => ctor.service.Score.requestSerialize(req);
      chatTokens = (await off.kv.call('Render', { model: MODEL, chat })).tokenIds as number[];
      expect(chatTokens.length).toBeGreaterThanOrEqual(16);
      await Promise.all([ingest(off), ingest(on)]);
    }, 60_000);

    afterAll(async () => {
      for (const side of [off, on]) {
        side?.raw.close();
        side?.pub.close();
        await side?.stop();
      }
    });

    it('gives byte-identical responses with fastScore on and off (token ids, chat, several candidates)', async () => {
      const requests = [
        { model: MODEL, tokens: { tokenIds: tokenRange(70) }, candidates: [A, B, C] },
        { model: MODEL, tokens: { tokenIds: tokenRange(40) } },
        { model: MODEL, chat, candidates: [B, A] },
        { model: MODEL, tokens: { tokenIds: tokenRange(64) }, candidates: [A, B], tierWeights: { GPU: 1, CPU: 0.5 } },
      ];
      for (const req of requests) {
        const body = serialize(req);
        const [a, b] = await Promise.all([scoreBytes(off, body), scoreBytes(on, body)]);
        expect(b.equals(a), JSON.stringify(req)).toBe(true);
      }
      const res = await on.kv.call('Score', requests[0]);
      expect(res.scores.map((s: { endpoint: string; matchedBlocks: number }) => [s.endpoint, s.matchedBlocks])).toEqual(
        [
          [A, 4],
          [B, 2],
          [C, 0],
        ],
      );
      const chatRes = await on.kv.call('Score', requests[2]);
      const chatA = chatRes.scores.find((s: { endpoint: string }) => s.endpoint === A);
      expect(chatA.matchedBlocks).toBe(Math.floor(chatTokens.length / 16));
    });

    it('answers a bad request and an undecodable body with the same status and details as grpc-js', async () => {
      const bodies = [
        serialize({ model: MODEL, tokens: { tokenIds: [1] }, candidates: ['nope'] }),
        serialize({ model: MODEL, tokens: { tokenIds: [1] }, candidates: [A, A, A, A, A] }),
        serialize({ model: '', tokens: { tokenIds: [1] } }),
        Buffer.from([0x0a, 0x05, 0x41]), // field 1, length 5, 1 byte present
      ];
      const expected = [
        [status.INVALID_ARGUMENT, /candidates\[0\]: "nope" is not <host>:<port>/],
        [status.RESOURCE_EXHAUSTED, /candidates: 5 candidates, at most 4/],
        [status.INVALID_ARGUMENT, /model: is required/],
        [status.INVALID_ARGUMENT, /./],
      ] as const;
      for (const [i, body] of bodies.entries()) {
        const [a, b] = await Promise.all([
          scoreBytes(off, body).then(
            () => null,
            (e: ServiceError) => e,
          ),
          scoreBytes(on, body).then(
            () => null,
            (e: ServiceError) => e,
          ),
        ]);
        expect(b?.code, `case ${i}`).toBe(expected[i][0]);
        expect(b?.details).toMatch(expected[i][1]);
        expect([b?.code, b?.details]).toEqual([a?.code, a?.details]);
      }
    });

    it('refuses a compressed flag without an encoding, an oversize body, a bad grpc-timeout; serves after', async () => {
      const session = connect(`http://127.0.0.1:${on.port}`);
      const offSession = connect(`http://127.0.0.1:${off.port}`);
      try {
        const body = serialize({ model: MODEL, tokens: { tokenIds: tokenRange(16) }, candidates: [A] });
        const compressed = await h2Call(session, framed(body, 1));
        expect([compressed.status, compressed.message]).toEqual([
          String(status.UNIMPLEMENTED),
          'Received a compressed message but no grpc-encoding was declared',
        ]);
        // Only the 5-byte prefix announcing 100,000 bytes: refused before the body, as grpc-js does (same details).
        const [big, bigOff] = await Promise.all([
          h2Call(session, framed(Buffer.alloc(0), 0, 100_000)),
          h2Call(offSession, framed(Buffer.alloc(0), 0, 100_000)),
        ]);
        expect([big.status, big.message]).toEqual([
          String(status.RESOURCE_EXHAUSTED),
          'Received message larger than max (100000 vs 65536)',
        ]);
        expect([big.status, big.message]).toEqual([bigOff.status, bigOff.message]);
        const [badTimeout, badTimeoutOff] = await Promise.all([
          h2Call(session, framed(body), { 'grpc-timeout': '12x' }),
          h2Call(offSession, framed(body), { 'grpc-timeout': '12x' }),
        ]);
        expect([badTimeout.status, badTimeout.message]).toEqual([
          String(status.INTERNAL),
          'Invalid grpc-timeout value "12x"',
        ]);
        expect([badTimeout.status, badTimeout.message]).toEqual([badTimeoutOff.status, badTimeoutOff.message]);
        // A request that never completes: the deadline answers it (the API never ran), as on grpc-js.
        const [late, lateOff] = await Promise.all([
          h2Call(session, framed(body).subarray(0, 9), { 'grpc-timeout': '50m' }, false),
          h2Call(offSession, framed(body).subarray(0, 9), { 'grpc-timeout': '50m' }, false),
        ]);
        expect([late.status, late.message]).toEqual([String(status.DEADLINE_EXCEEDED), 'Deadline exceeded']);
        expect([late.status, late.message]).toEqual([lateOff.status, lateOff.message]);
        const [ok, okOff] = await Promise.all([
          h2Call(session, framed(body), { 'grpc-timeout': '5S' }),
          h2Call(offSession, framed(body), { 'grpc-timeout': '5S' }),
        ]);
        expect(ok.status).toBe('0');
        expect(ok.data.equals(okOff.data)).toBe(true);
        expect(ok.data.readUInt32BE(1)).toBe(ok.data.length - 5);
        // grpc-go's 30-day deadline (2592000S): beyond a timer's range, still a deadline, never fired at once.
        const month = await h2Call(session, framed(body), { 'grpc-timeout': '2592000S' });
        expect(month.status).toBe('0');
        expect(month.data.equals(okOff.data)).toBe(true);
      } finally {
        session.close();
        offSession.close();
      }
      expect(on.openCalls()).toBe(0);
    });

    it('survives calls cancelled mid-request and mid-call: open calls back to 0, serving after', async () => {
      const session = connect(`http://127.0.0.1:${on.port}`);
      const body = serialize({ model: MODEL, chat, candidates: [A, B] });
      const closed: Promise<void>[] = [];
      for (let i = 0; i < 20; i++) {
        const req = session.request({
          ':method': 'POST',
          ':path': SCORE,
          'content-type': 'application/grpc',
          te: 'trailers',
        });
        req.on('error', () => undefined);
        closed.push(new Promise((resolve) => req.on('close', () => resolve())));
        if (i % 2 === 0) {
          req.write(framed(body).subarray(0, 8)); // half a request, then the reset
          setImmediate(() => req.close(constants.NGHTTP2_CANCEL));
        } else {
          req.end(framed(body)); // the whole request, reset while it is served
          setImmediate(() => req.close(constants.NGHTTP2_CANCEL));
        }
      }
      await Promise.all(closed);
      session.close();
      await waitFor(() => on.openCalls() === 0, 'open calls released');
      const res = await on.kv.call('Score', { model: MODEL, tokens: { tokenIds: tokenRange(32) }, candidates: [B] });
      expect(res.scores[0].matchedBlocks).toBe(2);
      expect(on.openCalls()).toBe(0);
    });

    it('leaves every other RPC to grpc-js (GetInfo, Health Check) and still records Score in the metrics', async () => {
      const [info, infoOff] = await Promise.all([on.kv.call('GetInfo', {}), off.kv.call('GetInfo', {})]);
      expect(info).toEqual(infoOff);
      const health = grpcClient(`127.0.0.1:${on.port}`, 'grpc/health/v1/health.proto', 'grpc.health.v1.Health');
      try {
        expect(await health.call('Check', { service: 'kvindexer.v1.KvIndexer' })).toEqual({ status: 'SERVING' });
      } finally {
        health.close();
      }
      const before = await scoreCount(on);
      for (let i = 0; i < 3; i++) await on.kv.call('Score', { model: MODEL, tokens: { tokenIds: tokenRange(16) } });
      expect(await scoreCount(on)).toBe(before + 3);
    });
  },
);
