import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Publisher } from 'zeromq';
import { startApi } from '../../src/service/start-api.js';
import { startService } from '../../src/service/start-service.js';
import { startThreaded } from '../../src/service/start-threaded.js';
import { BlockHasher } from '../../src/keys/index.js';
import { ConfigSchema, createLogger } from '../../src/ops/index.js';
import { grpcClient } from '../support/grpc-client.js';
import { freePort } from '../support/redis-server.js';
import { entriesOf, kvMessage, publisherSeenByApi, tokenRange, waitForAsync } from '../support/zmq.js';

const MODEL = 'Qwen/Qwen3-8B';
const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const tokens = tokenRange;
const msg = kvMessage;
const hasher = new BlockHasher({ blockSize: 16, hashSeed: '' });
const keysOf = (toks: number[], model = MODEL) => Array.from(hasher.keysFor(model, toks), String);

/** The service's ports and its stop, whichever shape runs it. */
interface Served {
  grpcPort: number;
  metricsPort: number;
  stop(): Promise<void>;
}

/**
 * Every shape of the service answers the same: one event loop, and api.indexThread (ZMQ, index and the API's work in
 * a thread of their own, calls handed over as bytes), each behind the lean HTTP/2 server (api.leanHttp2, the
 * default) and behind node:http2 + grpc-js. The test sees only what a client sees: gRPC, ZMQ, /metrics.
 */
describe.each([
  { indexThread: false, leanHttp2: true },
  { indexThread: true, leanHttp2: true },
  { indexThread: false, leanHttp2: false },
  { indexThread: true, leanHttp2: false },
])('gRPC API (%o): real client, real server, events from a real ZMQ publisher', ({ indexThread, leanHttp2 }) => {
  let served: Served;
  let pub: Publisher;
  let kv: ReturnType<typeof grpcClient>;
  const entries = (endpoint: string) => entriesOf(kv, endpoint);
  const until = (done: () => Promise<boolean>, what: string) => waitForAsync(done, what);

  beforeAll(async () => {
    const zmqAddress = `tcp://127.0.0.1:${await freePort()}`;
    const config = ConfigSchema.parse({
      zmq: { mode: 'bind', addresses: [zmqAddress] },
      api: { grpcAddress: '127.0.0.1:0', maxCandidates: 4, indexThread, leanHttp2 },
      metrics: { host: '127.0.0.1', port: 0 },
      log: { level: 'silent', statsIntervalSeconds: 0 },
    });
    const log = createLogger('silent');
    if (indexThread) {
      served = await startThreaded(config, log);
    } else {
      const service = await startService(config, log);
      const api = await startApi(service, config, log);
      served = {
        grpcPort: api.grpcPort,
        metricsPort: api.metricsPort,
        stop: async () => {
          await api.stop();
          await service.stop();
        },
      };
    }
    kv = grpcClient(`127.0.0.1:${served.grpcPort}`, 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer');
    pub = await publisherSeenByApi(zmqAddress, kv);
    // A: 3 GPU blocks; B: 2 GPU blocks, the second also on CPU.
    await pub.send(
      msg(`kv@${A}@${MODEL}`, 0, [1, [['BlockStored', [11n, 12n, 13n], null, tokens(48), 16, null, null]], null]),
    );
    await pub.send(
      msg(`kv@${B}@${MODEL}`, 0, [
        1,
        [
          {
            type: 'BlockStored',
            block_hashes: [21n, 22n],
            parent_block_hash: null,
            token_ids: tokens(32),
            block_size: 16,
          },
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
    await until(async () => (await entries(A)) === 3 && (await entries(B)) === 3, 'events indexed');
  });

  afterAll(async () => {
    kv?.close();
    pub?.close();
    await served?.stop();
  });

  it('Score from token ids: per-candidate prefix, tiers, zero for the unmatched', async () => {
    const res = await kv.call('Score', {
      model: MODEL,
      tokens: { tokenIds: tokens(50) },
      candidates: [A, B, '10.0.0.3:8000'],
      returnBlockKeys: true,
    });
    expect(res.totalBlocks).toBe(3);
    expect(res.tokenCount).toBe(50);
    expect(res.blockSize).toBe(16);
    expect(res.fingerprint).toEqual({ scheme: 'cbor-fnv64a', hashSeed: '', blockSize: 16 });
    expect(res.blockKeys).toEqual(keysOf(tokens(48)));
    expect(res.degraded).toBe(false);
    expect(res.scores).toEqual([
      {
        endpoint: A,
        matchedBlocks: 3,
        weighted: 3,
        normalized: 1,
        blocksByTier: { GPU: 3 },
        speculativeBlocks: 0,
        imagesSeen: 0,
      },
      {
        endpoint: B,
        matchedBlocks: 2,
        weighted: 2,
        normalized: 2 / 3,
        blocksByTier: { GPU: 2 },
        speculativeBlocks: 0,
        imagesSeen: 0,
      },
      {
        endpoint: '10.0.0.3:8000',
        matchedBlocks: 0,
        weighted: 0,
        normalized: 0,
        blocksByTier: {},
        speculativeBlocks: 0,
        imagesSeen: 0,
      },
    ]);
  });

  it('Score from block keys with per-request tier weights, and Lookup', async () => {
    const res = await kv.call('Score', {
      model: MODEL,
      blockKeys: { keys: keysOf(tokens(48)) },
      candidates: [B],
      tierWeights: { GPU: 0.5 },
    });
    // Block 2 is on GPU (0.5 here) and CPU (0.8): the best tier counts.
    expect(res.scores[0]).toMatchObject({
      endpoint: B,
      matchedBlocks: 2,
      weighted: 1.3,
      blocksByTier: { GPU: 1, CPU: 1 },
    });
    const look = await kv.call('Lookup', { blockKeys: keysOf(tokens(48)) });
    expect(look.totalBlocks).toBe(3);
    expect(look.scores.map((s: { endpoint: string; matchedBlocks: number }) => [s.endpoint, s.matchedBlocks])).toEqual([
      [A, 3],
      [B, 2],
    ]);
  });

  it('Score with speculate, then Release', async () => {
    const c = '10.0.0.4:8000';
    const first = await kv.call('Score', {
      model: MODEL,
      tokens: { tokenIds: tokens(32) },
      candidates: [c],
      speculate: { endpoint: c, ttlMs: 60_000 },
    });
    expect(first.scores[0].matchedBlocks).toBe(0);
    const second = await kv.call('Score', { model: MODEL, tokens: { tokenIds: tokens(32) }, candidates: [c] });
    expect(second.scores[0]).toMatchObject({ matchedBlocks: 2, speculativeBlocks: 2 });
    expect(await kv.call('Release', { endpoint: c, blockKeys: keysOf(tokens(32)) })).toEqual({ releasedBlocks: 2 });
    const third = await kv.call('Score', { model: MODEL, tokens: { tokenIds: tokens(32) }, candidates: [c] });
    expect(third.scores[0].matchedBlocks).toBe(0);
  });

  it('Reserve, ComputeBlockKeys with an image item and a cache salt', async () => {
    expect(await kv.call('Reserve', { endpoint: '10.0.0.5:8000', blockKeys: keysOf(tokens(16)) })).toEqual({
      reservedBlocks: 1,
    });
    const res = await kv.call('ComputeBlockKeys', {
      model: MODEL,
      cacheSalt: 'tenant-a',
      tokens: { tokenIds: tokens(40), items: [{ identifier: 'img', offset: 4, length: 20 }] },
    });
    const expected = hasher.keysFor(MODEL, tokens(40), [['img', 'tenant-a'], ['img']]);
    expect(res.blockKeys).toEqual(Array.from(expected, String));
    expect(res.items).toEqual([
      { offset: 4, length: 20, identifier: 'img', estimated: false, identifierSource: 'caller', fetchOutcome: '' },
    ]);
    expect(res.tokenCount).toBe(40);
  });

  it('ListEndpoints, GetInfo, GetStats, ClearEndpoint', async () => {
    const list = await kv.call('ListEndpoints', {});
    const byName = Object.fromEntries(list.endpoints.map((e: { endpoint: string }) => [e.endpoint, e]));
    expect(byName[A]).toMatchObject({ lastSeq: '0', blocksByTier: { GPU: '3' }, state: 'live' });
    expect(byName[B]).toMatchObject({ blocksByTier: { GPU: '2', CPU: '1' } });

    const info = await kv.call('GetInfo', {});
    expect(info).toMatchObject({
      backend: 'memory',
      fingerprint: { scheme: 'cbor-fnv64a', blockSize: 16 },
      models: [],
    });
    // Default weights (scoring/tier-weights.ts); an unknown tier weighs 0.1, no longer 1.0 like GPU.
    expect(info.tierWeights).toEqual({
      GPU: 1,
      CPU: 0.8,
      CPU_PINNED: 0.8,
      DISK: 0.25,
      STORAGE: 0.25,
      FS: 0.25,
      OBJ: 0.2,
      EXTERNAL: 0.2,
      STORAGE_REMOTE: 0.1,
      FS_REMOTE: 0.1,
      OBJ_REMOTE: 0.1,
      '*': 0.1,
    });

    const stats = await kv.call('GetStats', {});
    expect(Number(stats.blocksStored)).toBe(6);
    expect(Number(stats.indexEntries)).toBeGreaterThanOrEqual(6);

    expect(await kv.call('ClearEndpoint', { endpoint: B })).toEqual({ clearedEntries: '3' });
    const after = await kv.call('Score', { model: MODEL, tokens: { tokenIds: tokens(48) }, candidates: [B] });
    expect(after.scores[0].matchedBlocks).toBe(0);
  });

  it('rejects bad input with the right status and the field, and keeps serving', async () => {
    const cases: [string, object, status, RegExp][] = [
      ['Score', { model: '', tokens: { tokenIds: [1] } }, status.INVALID_ARGUMENT, /model: is required/],
      ['Score', { model: MODEL }, status.INVALID_ARGUMENT, /input: one of chat, prompt, tokens or block_keys/],
      [
        'Score',
        { model: MODEL, tokens: { tokenIds: [1] }, candidates: ['nope'] },
        status.INVALID_ARGUMENT,
        /candidates\[0\]: "nope" is not <host>:<port>/,
      ],
      [
        'Score',
        { model: MODEL, tokens: { tokenIds: [1] }, candidates: [A, A, A, A, A] },
        status.RESOURCE_EXHAUSTED,
        /candidates: 5 candidates, at most 4/,
      ],
      [
        'Score',
        { model: MODEL, tokens: { tokenIds: [1, 2], items: [{ identifier: 'i', offset: 1, length: 5 }] } },
        status.INVALID_ARGUMENT,
        /tokens.items\[0\]: range \[1, 6\) is past the 2 tokens/,
      ],
      ['Score', { model: MODEL, chat: { messagesJson: '[]' } }, status.NOT_FOUND, /no models are loaded/],
      [
        'Score',
        { model: MODEL, tokens: { tokenIds: [1] }, tierWeights: { GPU: -1 } },
        status.INVALID_ARGUMENT,
        /tier_weights\[GPU\]/,
      ],
      ['Reserve', { endpoint: A, blockKeys: [] }, status.INVALID_ARGUMENT, /block_keys: is required/],
      [
        'Reserve',
        { endpoint: A, blockKeys: ['1'], ttlMs: 700_000 },
        status.INVALID_ARGUMENT,
        /ttl_ms: must be at most 600000/,
      ],
      ['ClearEndpoint', { endpoint: 'a b' }, status.INVALID_ARGUMENT, /endpoint: "a b" is not <host>:<port>/],
      [
        'AddEndpoint',
        { endpoint: A, zmqAddress: 'http://10.0.0.1:5557' },
        status.INVALID_ARGUMENT,
        /zmq_address: "http:\/\/10.0.0.1:5557" is not tcp:\/\/<host>:<port>/,
      ],
      [
        'RemoveEndpoint',
        { endpoint: '10.0.0.77:8000' },
        status.NOT_FOUND,
        /endpoint: "10.0.0.77:8000" is not a known endpoint/,
      ],
      [
        'AddEndpoint',
        { endpoint: A, zmqAddress: 'tcp://10.0.0.1:5557', ttlSeconds: -1 },
        status.INVALID_ARGUMENT,
        /ttl_seconds: ttl_seconds must be 0..2592000, got -1/,
      ],
      [
        'AddEndpoint',
        { endpoint: A, zmqAddress: 'tcp://10.0.0.1:5557', maxBlocks: '2000000000' },
        status.INVALID_ARGUMENT,
        /max_blocks: max_blocks must be 0..1000000000/,
      ],
    ];
    for (const [method, req, code, message] of cases) {
      const err = await kv.call(method, req).then(
        () => null,
        (e: { code: number; details: string }) => e,
      );
      expect({ method, req, code: err?.code, details: err?.details }).toMatchObject({ method, req, code });
      expect(err!.details).toMatch(message);
    }
    const ok = await kv.call('Score', { model: MODEL, tokens: { tokenIds: tokens(48) }, candidates: [A] });
    expect(ok.scores[0].matchedBlocks).toBe(3);
  });

  it('rejects strings that were not valid UTF-8 on the wire', async () => {
    const { credentials, makeGenericClientConstructor } = await import('@grpc/grpc-js');
    // A raw ScoreRequest: field 1 (model) = bytes 0xff 0xfe, field 6 (tokens) = {field 1: packed [1]}.
    const raw = Buffer.from([0x0a, 0x02, 0xff, 0xfe, 0x32, 0x03, 0x0a, 0x01, 0x01]);
    const Raw = makeGenericClientConstructor(
      {
        Score: {
          path: '/kvindexer.v1.KvIndexer/Score',
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      'Raw',
    );
    const client = new Raw(`127.0.0.1:${served.grpcPort}`, credentials.createInsecure()) as unknown as {
      Score(req: Buffer, cb: (err: { code: number; details: string } | null) => void): void;
      close(): void;
    };
    try {
      const err = await new Promise<{ code: number; details: string } | null>((resolve) =>
        client.Score(raw, (e) => resolve(e)),
      );
      expect([err?.code, err?.details]).toEqual([status.INVALID_ARGUMENT, 'model: is not valid UTF-8']);
    } finally {
      client.close();
    }
  });

  it('AddEndpoint connects to a pod that binds its PUB (connect mode), RemoveEndpoint closes and clears it', async () => {
    const { Publisher } = await import('zeromq');
    const pod = new Publisher();
    await pod.bind('tcp://127.0.0.1:*');
    const C = '10.0.0.9:8000';
    try {
      const added = await kv.call('AddEndpoint', { endpoint: C, zmqAddress: pod.lastEndpoint });
      expect(added.endpoint).toMatchObject({ endpoint: C, state: 'live' });
      // The subscription propagates asynchronously: publish until the stream shows up.
      for (let seq = 0; (await entries(C)) === 0 && seq < 200; seq++) {
        await pod.send(
          msg(`kv@${C}@${MODEL}`, 0, [1, [['BlockStored', [91n, 92n], null, tokens(32), 16, null, null]], null]),
        );
        await new Promise((r) => setTimeout(r, 20));
      }
      const listed = (await kv.call('ListEndpoints', {})).endpoints.find((e: { endpoint: string }) => e.endpoint === C);
      expect(listed).toMatchObject({ endpoint: C, models: [MODEL], blocksByTier: { GPU: '2' }, state: 'live' });
      expect(await kv.call('RemoveEndpoint', { endpoint: C })).toEqual({ clearedEntries: '2' });
      expect(await entries(C)).toBe(0);
      expect((await kv.call('ListEndpoints', {})).endpoints.map((e: { endpoint: string }) => e.endpoint)).not.toContain(
        C,
      );
    } finally {
      pod.close();
    }
  });

  it("serves llm-d's indexer.v1 (GetPodScores) and answers NOT_FOUND without loaded models", async () => {
    const llmd = grpcClient(`127.0.0.1:${served.grpcPort}`, 'indexer/v1/indexer.proto', 'indexer.v1.IndexerService');
    try {
      const err = await llmd
        .call('GetPodScores', { prompt: 'hello', modelName: MODEL, podIdentifiers: [A] })
        .catch((e) => e);
      expect(err.code).toBe(status.NOT_FOUND);
    } finally {
      llmd.close();
    }
  });

  it('health: overall, liveness, readiness and service names; unknown names are NOT_FOUND', async () => {
    const health = grpcClient(`127.0.0.1:${served.grpcPort}`, 'grpc/health/v1/health.proto', 'grpc.health.v1.Health');
    try {
      for (const service of ['', 'liveness', 'readiness', 'kvindexer.v1.KvIndexer']) {
        expect(await health.call('Check', { service })).toEqual({ status: 'SERVING' });
      }
      expect((await health.call('Check', { service: 'nope' }).catch((e) => e)).code).toBe(status.NOT_FOUND);
    } finally {
      health.close();
    }
  });

  it('exposes Prometheus metrics and /healthz', async () => {
    await kv.call('Score', { model: MODEL, tokens: { tokenIds: tokens(48) }, candidates: [A] });
    const text = await (await fetch(`http://127.0.0.1:${served.metricsPort}/metrics`)).text();
    expect(text).toMatch(/kv_indexer_score_seconds_count\{input="tokens"\} [1-9]/);
    // Exported values are the owners' counters at scrape time (GetStats reads the same owners).
    const stats = await kv.call('GetStats', {});
    expect(stats.blocksStored).toBe('8');
    expect(text).toContain(`kv_indexer_blocks_total{op="stored"} 8\n`);
    // BlockStored events: A's one, B's two, C's one.
    expect(text).toContain(`kv_indexer_events_total{type="BlockStored"} 4\n`);
    // Every name once, though the index thread's registry and the main thread's are joined.
    const typed = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
    expect(typed.length).toBe(new Set(typed).size);
    expect(text).toMatch(/^kv_indexer_process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^kv_indexer_grpc_connections [1-9]/m);
    expect(text).toMatch(/kv_indexer_endpoints\{state="live"\} [1-9]/);
    expect(text).toContain(`kv_indexer_endpoint_batches_applied_total{endpoint="${A}"} 1\n`);
    expect(text).toMatch(new RegExp(`kv_indexer_endpoint_lag_seconds\\{endpoint="${A}"\\} \\d`));
    expect(text).toMatch(/kv_indexer_prompt_prepare_seconds_count\{input="tokens"\} [1-9]/);
    // Every family of ours that only grows is typed counter (rate() and resets work); prom-client's own Node.js
    // families (nodejs_active_handles_total, a level, is a gauge there) are not ours to retype.
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
    const totals = [...types].filter(([name]) => name.endsWith('_total') && !name.startsWith('kv_indexer_nodejs_'));
    expect(totals.length).toBeGreaterThan(30);
    expect(totals.filter(([, type]) => type !== 'counter')).toEqual([]);
    expect(types.get('kv_indexer_blocks_total')).toBe('counter');
    const health = await fetch(`http://127.0.0.1:${served.metricsPort}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
  });

  it('AddEndpoint with a store bound: a store-only publisher keeps at most max_blocks engine blocks (GetStats counts)', async () => {
    const { Publisher } = await import('zeromq');
    const pod = new Publisher();
    await pod.bind('tcp://127.0.0.1:*');
    const D = '10.0.0.10:8000';
    try {
      const before = await kv.call('GetStats', {});
      await kv.call('AddEndpoint', { endpoint: D, zmqAddress: pod.lastEndpoint, maxBlocks: '2' });
      for (let seq = 0; (await entries(D)) === 0 && seq < 200; seq++) {
        await pod.send(
          msg(`kv@${D}@${MODEL}`, seq, [
            1,
            [['BlockStored', [71n, 72n, 73n, 74n], null, tokens(64), 16, null, null]],
            null,
          ]),
        );
        await new Promise((r) => setTimeout(r, 20));
      }
      // Each store of the 4 blocks keeps the 2 youngest (repeats of the message refresh, never grow past the bound).
      expect(await entries(D)).toBe(2);
      const stats = await kv.call('GetStats', {});
      expect(Number(stats.blocksDroppedByStoreBound) - Number(before.blocksDroppedByStoreBound)).toBe(2);
      expect(stats.blocksRefusedGroupWithoutKind).toBe('0');
      expect(stats.keyOnlyChunkRemovals).toBe('0');
      await kv.call('RemoveEndpoint', { endpoint: D });
    } finally {
      pod.close();
    }
  });
});
