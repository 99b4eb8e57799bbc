import { encode } from '@msgpack/msgpack';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DRAINING_LOG } from '../../src/service/start-api.js';
import { SimFleet } from '../../src/sim/publisher/fleet.js';
import { SimPublisher } from '../../src/sim/publisher/publisher.js';
import { ChatWorkload } from '../../src/sim/publisher/workload.js';
import { grpcClient } from '../support/grpc-client.js';
import { tokenRange, waitFor } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen3-8B';
const CHAT_MODEL = 'Qwen/Qwen2-VL-2B-Instruct';
/** The endpoint holding a fixed chain of 64 blocks (tokens 1..1024); never evicted, so its score never changes. */
const HOLDER = '10.0.0.1:8000';
/** A candidate that never publishes. */
const EMPTY = '10.0.0.2:8000';
const IN_FLIGHT = 8;
const AFTER_CALLS = 8;

type Log = Record<string, unknown> & { level?: number; msg?: string };
type Outcome = { phase: Phase; kind: 'short' | 'long' | 'chat'; code: number; response?: unknown };
/** before: started before SIGTERM was sent; between: after it, before the drain was logged; after: after that. */
type Phase = 'before' | 'between' | 'after';

const score = (endpoint: string, matched: number, total: number) => ({
  endpoint,
  matchedBlocks: matched,
  weighted: matched,
  normalized: matched / total,
  blocksByTier: matched > 0 ? { GPU: matched } : {},
  speculativeBlocks: 0,
  imagesSeen: 0,
});

/** Expected replies: exact, since only HOLDER's fixed chain can match the token prompts. */
function expectedTokens(tokens: number) {
  const total = tokens / 16;
  return {
    totalBlocks: total,
    blockSize: 16,
    tokenCount: tokens,
    scores: [score(HOLDER, 64, total), score(EMPTY, 0, total)],
    degraded: false,
    unknownModel: false, // the fleet publishes this model (ScoreResponse field 10)
  };
}

/**
 * Issue 8: SIGTERM while the whole process is under load. The real CLI (`serve`, through tsx as `npm start` runs it)
 * ingests a simulated fleet over ZMQ (connect mode, publishers bound on ephemeral ports) while the test keeps 8 Score
 * calls in flight plus long ones (100k-token prompts, long chats through the tokenizer pool), then sends SIGTERM.
 */
// The shapes of the service: one event loop, api.indexThread (the write path and the API's work in a thread), and
// api.processes (two serving processes, each with its replica; the test's connection reaches one of them).
describe.each([
  { shape: 'one event loop', set: 'api.indexThread=false', workers: 0 },
  { shape: 'api.indexThread', set: 'api.indexThread=true', workers: 0 },
  { shape: 'api.processes=2', set: 'api.processes=2', workers: 2 },
])('kv-indexer serve ($shape): SIGTERM under ZMQ ingest and gRPC load', ({ set, workers }) => {
  let child: ChildProcess;
  const logs: Log[] = [];
  const stderr: string[] = [];
  let exit: Promise<number | null>;
  const publishers: SimPublisher[] = [];
  let traffic: NodeJS.Timeout | undefined;
  let kv: ReturnType<typeof grpcClient>;
  let registryDir: string;

  beforeAll(async () => {
    // The demo model with no tokenization cache: every chat is tokenised afresh in the server's worker pool, so the
    // chats launched before SIGTERM are still running when it is sent (a cached chat answers within a turn or two).
    registryDir = mkdtempSync(join(tmpdir(), 'kvi-drain-'));
    const modelDir = fileURLToPath(new URL('../../fixtures/models/qwen2-vl', import.meta.url));
    writeFileSync(
      join(registryDir, 'models.json'),
      JSON.stringify({ models: [{ name: CHAT_MODEL, dir: modelDir }], cacheBytes: 0 }),
    );
    // Publishers bind (as vLLM does with tcp://*:5557), each with a replay ROUTER; the service connects to them.
    const holder = new SimPublisher({
      topic: `kv@${HOLDER}@${MODEL}`,
      endpoint: 'tcp://127.0.0.1:*',
      replayEndpoint: 'tcp://127.0.0.1:*',
    });
    await holder.start();
    publishers.push(holder);
    const fleet = new SimFleet(
      ['10.0.1.1:8000', '10.0.1.2:8000'].map((endpoint, i) => ({
        endpoint,
        model: MODEL,
        gpuBlocks: 512,
        cpuBlocks: i === 0 ? 256 : 0,
        style: { encoding: i === 0 ? ('map' as const) : ('array' as const), hashes: 'int' as const },
      })),
    );
    const fleetPubs = new Map<string, SimPublisher>();
    for (const identity of fleet.identities()) {
      const pub = new SimPublisher({
        topic: `kv@${identity}@${MODEL}`,
        endpoint: 'tcp://127.0.0.1:*',
        replayEndpoint: 'tcp://127.0.0.1:*',
      });
      await pub.start();
      publishers.push(pub);
      fleetPubs.set(identity, pub);
    }
    const specs = publishers.map((p) => `${p.pubAddress};replay=${p.replayAddress}`);

    child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'serve',
        '--set',
        'zmq.addresses=[]',
        '--set',
        `endpoints.static=${JSON.stringify(specs)}`,
        '--set',
        'api.grpcAddress=127.0.0.1:0',
        '--set',
        'metrics.host=127.0.0.1',
        '--set',
        'metrics.port=0',
        '--set',
        `models.registry=${join(registryDir, 'models.json')}`,
        '--set',
        'log.statsIntervalSeconds=0',
        '--set',
        set,
      ],
      {
        cwd: new URL('../../', import.meta.url).pathname,
        env: { ...process.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        logs.push(JSON.parse(line) as Log);
      } catch {
        logs.push({ msg: line, unparsed: true });
      }
    });
    createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
    await waitFor(
      () => logs.some((l) => l.msg === 'API serving') || child.exitCode !== null,
      'the service to start',
      30_000,
    );
    const port = (logs.find((l) => l.msg === 'API serving') as { grpcPort: number }).grpcPort;
    kv = grpcClient(`127.0.0.1:${port}`, 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer');

    // HOLDER: seq 0 is the chain; empty batches follow until one arrives (the subscription takes a moment), and the
    // stream joins by replaying from 0.
    const batch = (events: unknown[]) => encode([1_763_700_000, events, null], { useBigInt64: true });
    const chain = Array.from({ length: 64 }, (_, i) => BigInt(1000 + i));
    await holder.publish(batch([['BlockStored', chain, null, tokenRange(1024), 16, null, null]]));
    let matched = 0;
    for (let i = 0; matched !== 64 && i < 200; i++) {
      await holder.publish(batch([]));
      await new Promise((r) => setTimeout(r, 25));
      matched = (await kv.call('Score', { model: MODEL, tokens: { tokenIds: tokenRange(1024) }, candidates: [HOLDER] }))
        .scores[0].matchedBlocks;
    }
    expect(matched).toBe(64);

    // Continuous fleet traffic (chats, evictions, CPU offload) until the process is gone.
    const workload = new ChatWorkload(fleet, {
      seed: 11,
      systemPrompts: 4,
      systemPromptTokens: [128, 512],
      newChatShare: 0.3,
      loraShare: 0,
      loraName: 'adapter',
      imageShare: 0,
      imageTokens: [64, 64],
      openChats: 16,
    });
    traffic = setInterval(() => {
      workload.run(2);
      for (const b of fleet.step())
        void fleetPubs
          .get(b.identity)!
          .publish(b.payload)
          .catch(() => undefined);
    }, 10);
    // Ingest flows before the load starts: both fleet endpoints have applied batches.
    for (let i = 0; i < 400; i++) {
      const listed = (await kv.call('ListEndpoints', {})).endpoints as { endpoint: string; lastSeq: string }[];
      if (listed.filter((e) => e.endpoint.startsWith('10.0.1.') && Number(e.lastSeq) > 5).length === 2) break;
      await new Promise((r) => setTimeout(r, 25));
    }
  }, 60_000);

  afterAll(async () => {
    clearInterval(traffic);
    kv?.close();
    if (child && child.exitCode === null) child.kill('SIGKILL');
    for (const p of publishers) await p.close();
    rmSync(registryDir, { recursive: true, force: true });
  });

  it('answers every call started before SIGTERM, refuses calls after the drain began with UNAVAILABLE, exits 0', async () => {
    const listed = (await kv.call('ListEndpoints', {})).endpoints as { endpoint: string; lastSeq: string }[];
    expect(
      listed
        .filter((e) => e.endpoint.startsWith('10.0.1.') && Number(e.lastSeq) > 5)
        .map((e) => e.endpoint)
        .sort(),
    ).toEqual(['10.0.1.1:8000', '10.0.1.2:8000']);

    const chatText = Array.from({ length: 6000 }, (_, i) => `word${i % 97}`).join(' ');
    const requests = {
      short: { model: MODEL, tokens: { tokenIds: tokenRange(1024 + 256) }, candidates: [HOLDER, EMPTY] },
      long: { model: MODEL, tokens: { tokenIds: tokenRange(100_000) }, candidates: [HOLDER, EMPTY] },
      chat: {
        model: CHAT_MODEL,
        chat: { messagesJson: JSON.stringify([{ role: 'user', content: chatText }]) },
        candidates: [HOLDER, EMPTY],
      },
    };
    // The chat's reply is taken once before the load: every later one must equal it.
    const chatReference = await kv.call('Score', requests.chat, 20_000);
    expect(chatReference.scores).toEqual(
      [score(HOLDER, 0, 1), score(EMPTY, 0, 1)].map((s) => ({ ...s, normalized: 0 })),
    );
    expect(chatReference.tokenCount).toBeGreaterThan(6000);
    const expected = { short: expectedTokens(1024 + 256), long: expectedTokens(100_000), chat: strip(chatReference) };
    expect(strip(await kv.call('Score', requests.short))).toEqual(expected.short);
    expect(strip(await kv.call('Score', requests.long))).toEqual(expected.long);

    let phase: Phase = 'before';
    const outcomes: Outcome[] = [];
    const pending = new Map<Promise<void>, { phase: Phase; kind: Outcome['kind'] }>();
    let afterStarted = 0;
    const launch = (kind: Outcome['kind']): void => {
      const at = phase;
      if (at === 'after' && kind === 'short' && afterStarted++ >= AFTER_CALLS) return;
      const p: Promise<void> = kv.call('Score', requests[kind], 20_000).then(
        (response) => void outcomes.push({ phase: at, kind, code: 0, response: strip(response) }),
        (err: { code?: number }) => void outcomes.push({ phase: at, kind, code: err.code ?? -1 }),
      );
      pending.set(p, { phase: at, kind });
      void p.finally(() => {
        pending.delete(p);
        // Short calls keep IN_FLIGHT in flight until the after-phase quota is used.
        if (kind === 'short' && !(phase === 'after' && afterStarted >= AFTER_CALLS)) launch('short');
      });
    };
    for (let i = 0; i < IN_FLIGHT; i++) launch('short');
    // Let the load run: 200 short calls answered before SIGTERM.
    await waitFor(() => outcomes.length >= 200, '200 calls answered under load', 60_000);
    for (let i = 0; i < 2; i++) launch('long');
    for (let i = 0; i < 2; i++) launch('chat');
    // "Started" means on the wire: one turn of this process's event loop lets grpc-js write the calls it was handed
    // (a call still inside the client library when the server shuts down cannot be told from one sent later). Calls
    // relaunched during that turn count as "between".
    phase = 'between';
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const beforeInFlight = [...pending.values()].filter((c) => c.phase === 'before').map((c) => c.kind);
    child.kill('SIGTERM');
    // Every process drains (with api.processes, the one this connection reaches may be the last to begin).
    await waitFor(
      () => logs.filter((l) => l.msg === DRAINING).length === Math.max(1, workers),
      'the drain to begin',
      20_000,
    );
    phase = 'after';
    // A fresh batch of calls after the drain began (besides the short calls still relaunched).
    for (let i = 0; i < 2; i++) launch('long');
    for (let i = 0; i < 2; i++) launch('chat');
    const code = await exit;
    while (pending.size > 0) await Promise.all([...pending.keys()]);

    // The long chats (tokenised in the server's worker pool) were certainly still running when SIGTERM was sent.
    expect(beforeInFlight.filter((k) => k === 'chat')).toEqual(['chat', 'chat']);
    const before = outcomes.filter((o) => o.phase === 'before');
    // Every call started before SIGTERM: OK with the exact reply.
    expect(before.filter((o) => o.code !== 0)).toEqual([]);
    for (const o of before) expect(o.response).toEqual(expected[o.kind]);
    expect(before.filter((o) => o.kind === 'long').length).toBe(2);
    expect(before.filter((o) => o.kind === 'chat').length).toBe(2);
    // Calls started after the drain began: refused with UNAVAILABLE (14), none answered.
    const after = outcomes.filter((o) => o.phase === 'after');
    expect(after.length).toBe(AFTER_CALLS + 4);
    expect(after.map((o) => o.code)).toEqual(after.map(() => 14));
    // In between: answered exactly or refused, nothing else.
    for (const o of outcomes.filter((x) => x.phase === 'between')) {
      if (o.code === 0) expect(o.response).toEqual(expected[o.kind]);
      else expect(o.code).toBe(14);
    }

    expect(code).toBe(0);
    if (workers === 0) {
      const messages = logs.map((l) => l.msg);
      expect(messages.filter((m) => SHUTDOWN_SEQUENCE.includes(m as string))).toEqual(SHUTDOWN_SEQUENCE);
    } else {
      // The primary's lines in order around its processes' drains, and each process's drain in order.
      const primary = logs.filter((l) => l.worker === undefined).map((l) => l.msg);
      expect(primary.filter((m) => SHUTDOWN_SEQUENCE.includes(m as string))).toEqual([
        SHUTDOWN_SEQUENCE[0],
        ...SHUTDOWN_SEQUENCE.slice(3),
      ]);
      for (let w = 0; w < workers; w++) {
        const own = logs.filter((l) => l.worker === w).map((l) => l.msg);
        expect(own.filter((m) => SHUTDOWN_SEQUENCE.includes(m as string))).toEqual(SHUTDOWN_SEQUENCE.slice(1, 3));
      }
    }
    expect(logs.filter((l) => (l.level ?? 0) >= 50 || l.unparsed)).toEqual([]);
    expect(stderr).toEqual([]);
  }, 120_000);
});

const DRAINING = DRAINING_LOG;
/** What the log must show, in this order (docs/operations.md, "Shutdown"). */
const SHUTDOWN_SEQUENCE = [
  'shutting down: health NOT_SERVING, draining gRPC calls, then closing sockets',
  DRAINING_LOG,
  'gRPC calls drained',
  'event sockets closed, index closed',
  'stopped',
];

/** The reply without the echoed keys and fingerprint (not what this test is about). */
function strip(res: Record<string, unknown>) {
  const { blockKeys: _k, fingerprint: _f, items: _i, degradedReason: _r, ...rest } = res;
  return rest;
}
