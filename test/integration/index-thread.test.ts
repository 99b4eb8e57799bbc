import { status } from '@grpc/grpc-js';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Publisher } from 'zeromq';
import { ConfigSchema, createLogger } from '../../src/ops/index.js';
import { embeddedConfig, startEmbedded } from '../../src/service/embedded.js';
import { startThreaded, type ThreadedService } from '../../src/service/start-threaded.js';
import { runCli } from '../support/cli.js';
import { grpcClient } from '../support/grpc-client.js';
import { freePort } from '../support/redis-server.js';
import { kvMessage, tokenRange, waitForAsync } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen3-8B';
const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const CHAIN = Array.from({ length: 64 }, (_, i) => BigInt(5000 + i));
const PROMPT = { model: MODEL, tokens: { tokenIds: tokenRange(1024) }, candidates: [A, B] };
/** A chat of the demo registry's model (fixtures/models/demo.yaml), long enough to keep a tokenizer busy. */
const LONG_CHAT = {
  model: 'Qwen/Qwen2-VL-2B-Instruct',
  chat: {
    messagesJson: JSON.stringify([
      { role: 'user', content: Array.from({ length: 60_000 }, (_, i) => `word${i % 997}`).join(' ') },
    ]),
  },
  candidates: [A, B],
};

const until = (done: () => Promise<boolean>, what: string, timeoutMs = 20_000) => waitForAsync(done, what, timeoutMs);

async function startOn(
  zmqAddress: string,
  api: Record<string, unknown> = {},
  models: Record<string, unknown> = {},
): Promise<ThreadedService> {
  const config = ConfigSchema.parse({
    models,
    zmq: { mode: 'bind', addresses: [zmqAddress] },
    api: { grpcAddress: '127.0.0.1:0', indexThread: true, ...api },
    metrics: { host: '127.0.0.1', port: 0 },
    log: { level: 'silent', statsIntervalSeconds: 0 },
  });
  return startThreaded(config, createLogger('silent'));
}

/**
 * Issue 16, "bad input and faults": the index thread is killed while it serves a burst of Score calls. The process
 * lives on; the calls it held fail UNAVAILABLE (never another status, never a hang); readiness goes and comes back
 * with a new thread, whose index starts empty and fills again from the publisher, which reconnects by itself.
 */
describe('api.indexThread: an index thread that crashes under load is replaced', () => {
  let served: ThreadedService;
  let pub: Publisher;
  let kv: ReturnType<typeof grpcClient>;
  let health: ReturnType<typeof grpcClient>;
  let seq = 0;
  const publishChain = () =>
    pub.send(
      kvMessage(`kv@${A}@${MODEL}`, seq++, [1, [['BlockStored', CHAIN, null, tokenRange(1024), 16, null, null]], null]),
    );
  const matched = async () => (await kv.call('Score', PROMPT)).scores[0].matchedBlocks as number;
  const readiness = async () => (await health.call('Check', { service: 'readiness' })).status as string;

  beforeAll(async () => {
    const zmqAddress = `tcp://127.0.0.1:${await freePort()}`;
    served = await startOn(zmqAddress, {}, { registry: 'fixtures/models/demo.yaml' });
    kv = grpcClient(`127.0.0.1:${served.grpcPort}`, 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer');
    health = grpcClient(`127.0.0.1:${served.grpcPort}`, 'grpc/health/v1/health.proto', 'grpc.health.v1.Health');
    const { Publisher: Pub } = await import('zeromq');
    pub = new Pub();
    pub.connect(zmqAddress);
    // The subscription takes a moment to reach the PUB: publish until the chain is indexed.
    await until(async () => {
      await publishChain();
      return (await matched()) === 64;
    }, 'the chain to be indexed');
  }, 60_000);

  afterAll(async () => {
    kv?.close();
    health?.close();
    pub?.close();
    await served?.stop();
  });

  it('fails the calls in flight UNAVAILABLE, takes readiness away, and serves again from a new thread', async () => {
    expect(await readiness()).toBe('SERVING');
    const first = served.host.thread!;
    type Outcome = { code: number; details: string; matched: number };
    const outcome = (p: Promise<{ scores: { matchedBlocks: number }[] }>): Promise<Outcome> =>
      p.then(
        (res) => ({ code: 0, details: '', matched: res.scores[0].matchedBlocks }),
        (err: { code: number; details: string }) => ({ code: err.code, details: err.details, matched: -1 }),
      );
    // Long chats (tokenised in the thread's tokenizer pool, so held by the thread for a while) beside Score calls.
    const chats = Array.from({ length: 4 }, () => outcome(kv.call('Score', LONG_CHAT, 20_000)));
    await until(async () => served.host.inFlight >= 4, 'the chats to reach the thread');
    const scores = Array.from({ length: 100 }, () => outcome(kv.call('Score', PROMPT, 20_000)));
    served.host.crash();
    // Calls sent after the crash: handed over behind it, or refused while no thread runs.
    const late = Array.from({ length: 100 }, () => outcome(kv.call('Score', PROMPT, 20_000)));
    const results = await Promise.all([...scores, ...late]);
    const chatResults = await Promise.all(chats);

    // The chats the thread held failed UNAVAILABLE; every other call was answered exactly or failed UNAVAILABLE.
    expect(chatResults).toEqual(
      chats.map(() => ({ code: status.UNAVAILABLE, details: 'the index thread stopped during the call', matched: -1 })),
    );
    expect(results.filter((r) => r.code === 0 && r.matched !== 64)).toEqual([]);
    const failed = results.filter((r) => r.code !== 0);
    expect(failed.filter((r) => r.code !== status.UNAVAILABLE)).toEqual([]);
    expect(
      failed.filter(
        (r) =>
          r.details !== 'the index thread stopped during the call' &&
          r.details !== 'the index thread is restarting: retry shortly',
      ),
    ).toEqual([]);
    expect(served.host.inFlight).toBe(0);

    // Not ready while no thread serves (the replacement takes ≥ 100 ms of backoff plus its start), alive throughout.
    expect(served.host.thread).toBeNull();
    expect(await readiness()).toBe('NOT_SERVING');
    expect((await health.call('Check', { service: 'liveness' })).status).toBe('SERVING');
    const down = await kv.call('Score', PROMPT).catch((e: { code: number; details: string }) => e);
    expect([down.code, down.details]).toEqual([status.UNAVAILABLE, 'the index thread is restarting: retry shortly']);
    const healthz = await fetch(`http://127.0.0.1:${served.metricsPort}/healthz`);
    expect(healthz.status).toBe(503);

    await until(async () => (await readiness()) === 'SERVING', 'readiness back');
    expect(served.host.thread).not.toBe(first);
    expect(served.host.restarts).toBe(1);
    // The new thread's index starts empty: the publisher (reconnected to the re-bound port) fills it again.
    expect(await matched()).toBe(0);
    await until(async () => {
      await publishChain();
      return (await matched()) === 64;
    }, 'the chain to be indexed again');
    const text = await (await fetch(`http://127.0.0.1:${served.metricsPort}/metrics`)).text();
    expect(text).toContain('kv_indexer_index_thread_restarts_total 1\n');
    // The new thread's own runtime: its loop delay since the last scrape and its heap.
    expect(text).toMatch(/^kv_indexer_index_thread_event_loop_delay_seconds\{stat="p99"\} \d/m);
    expect(text).toMatch(/^kv_indexer_index_thread_heap_used_bytes [1-9]\d{6,}$/m);
    expect(text).toMatch(/^kv_indexer_score_seconds_count\{input="tokens"\} [1-9]/m);
    // Its CPU time and run-queue wait (Linux schedstat), both only growing while the thread lives.
    const sample = (page: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(page)?.[1]);
    const cpu = sample(text, 'kv_indexer_index_thread_cpu_seconds_total');
    const wait = sample(text, 'kv_indexer_index_thread_runqueue_wait_seconds_total');
    expect(cpu).toBeGreaterThan(0);
    expect(wait).toBeGreaterThanOrEqual(0);
    expect(await matched()).toBe(64);
    const later = await (await fetch(`http://127.0.0.1:${served.metricsPort}/metrics`)).text();
    expect(sample(later, 'kv_indexer_index_thread_cpu_seconds_total')).toBeGreaterThan(cpu);
    expect(sample(later, 'kv_indexer_index_thread_runqueue_wait_seconds_total')).toBeGreaterThanOrEqual(wait);
  }, 60_000);
});

describe('api.indexThread: a replacement that cannot start', () => {
  it('is retried with backoff; after 5 failed starts liveness is NOT_SERVING; it returns once a thread serves', async () => {
    const zmqPort = await freePort();
    const served = await startOn(`tcp://127.0.0.1:${zmqPort}`);
    const health = grpcClient(`127.0.0.1:${served.grpcPort}`, 'grpc/health/v1/health.proto', 'grpc.health.v1.Health');
    const { Subscriber } = await import('zeromq');
    const squatter = new Subscriber();
    const check = async (service: string) => (await health.call('Check', { service })).status as string;
    try {
      const first = served.host.thread!;
      const ended = new Promise((r) => first.once('exit', r));
      served.host.crash();
      await ended;
      // The thread's ZMQ port is taken before its replacement binds it: every start fails (zmq.addresses in use).
      await squatter.bind(`tcp://127.0.0.1:${zmqPort}`);
      expect(await check('readiness')).toBe('NOT_SERVING');
      expect(await check('liveness')).toBe('SERVING');
      await until(async () => (await check('liveness')) === 'NOT_SERVING', 'liveness to be given up', 40_000);
      expect(served.host.restarts).toBeGreaterThanOrEqual(5);
      expect(served.host.thread).toBeNull();
      // The port is free again: the next attempt serves, liveness and readiness return.
      squatter.close();
      await until(async () => (await check('readiness')) === 'SERVING', 'a thread to serve again', 40_000);
      expect(await check('liveness')).toBe('SERVING');
      expect((await health.call('Check', { service: '' })).status).toBe('SERVING');
    } finally {
      if (!squatter.closed) squatter.close();
      health.close();
      await served.stop();
    }
  }, 90_000);
});

describe('api.indexThread: admin token, bad requests and start-up failures', () => {
  let served: ThreadedService;
  let kv: ReturnType<typeof grpcClient>;
  let admin: ReturnType<typeof grpcClient>;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvi-thread-'));
    writeFileSync(join(dir, 'token'), 'a-token-of-twenty-chars\n');
    served = await startOn(`tcp://127.0.0.1:${await freePort()}`, { adminTokenFile: join(dir, 'token') });
    const address = `127.0.0.1:${served.grpcPort}`;
    kv = grpcClient(address, 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer');
    admin = grpcClient(address, 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer', undefined, {
      authorization: 'Bearer a-token-of-twenty-chars',
    });
  }, 60_000);

  afterAll(async () => {
    kv?.close();
    admin?.close();
    await served?.stop();
  });

  it('checks the admin token on the main thread; the thread applies what passes', async () => {
    const refused = await kv.call('ClearEndpoint', { endpoint: A }).catch((e) => e);
    expect([refused.code, refused.details]).toEqual([
      status.UNAUTHENTICATED,
      'admin RPCs need the header authorization: Bearer <token>',
    ]);
    const added = await admin.call('AddEndpoint', { endpoint: B, zmqAddress: 'tcp://127.0.0.1:1' });
    expect(added.endpoint).toMatchObject({ endpoint: B });
    expect(await admin.call('RemoveEndpoint', { endpoint: B })).toEqual({ clearedEntries: '0' });
  });

  it('answers bad requests with the status and field the thread decided, and keeps serving', async () => {
    const bad = await kv
      .call('Score', { model: MODEL, tokens: { tokenIds: [1] }, candidates: ['not an endpoint'] })
      .catch((e) => e);
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toMatch(/^candidates\[0\]: /);
    expect((await kv.call('Score', PROMPT)).scores).toHaveLength(2);
  });

  it('startEmbedded (whose callers reach the index and ingestor objects) refuses api.indexThread', async () => {
    await expect(startEmbedded(embeddedConfig({ api: { indexThread: true } }))).rejects.toThrow(
      'startEmbedded runs the service on this thread: start api.indexThread with startThreaded',
    );
  });

  it('serve exits 1 with one line naming the setting when the thread cannot start', async () => {
    const run = await runCli(
      [
        'serve',
        '--set',
        'api.indexThread=true',
        '--set',
        'zmq.addresses=["tcp://256.1.1.1:5557"]',
        '--set',
        'api.grpcAddress=127.0.0.1:0',
        '--set',
        'metrics.port=0',
      ],
      {},
      30_000,
    );
    expect(run.code).toBe(1);
    const fatal = run.logs.filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({
      setting: 'zmq.addresses',
      msg: expect.stringMatching(/^start-up failed: zmq\.addresses tcp:\/\/256\.1\.1\.1:5557: /),
    });
  }, 40_000);
});
