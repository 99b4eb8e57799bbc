import type { ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Publisher } from 'zeromq';
import type { MemoryIndex } from '../../src/index/index.js';
import { startRedis, type RedisServer } from '../support/redis-server.js';
import { startTestService, type TestService } from '../support/service.js';
import { kvMessage, tokenRange, waitFor } from '../support/zmq.js';

const MODEL = 'hardening/model';
const failure = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: ServiceError) => ({ code: e.code, details: e.details }),
  );
const INVALID = 3;
const EXHAUSTED = 8;

/** Issue 17, "Hardening": real gRPC clients and ZMQ publishers against the whole service. */
describe('API hardening', () => {
  let t: TestService;
  let pub: Publisher;

  beforeAll(async () => {
    t = await startTestService({ overrides: { api: { maxSpeculativePerCaller: 100 } } });
    pub = new Publisher();
    pub.connect(t.service.subscriber.lastEndpoint!);
  });
  afterAll(async () => {
    pub?.close();
    await t?.stop();
  });
  const scrape = async () => (await fetch(`http://127.0.0.1:${t.api.metricsPort}/metrics`)).text();

  it('Score for a model no endpoint publishes: unknown_model set and counted; cleared once one publishes it', async () => {
    const request = { model: MODEL, tokens: { tokenIds: tokenRange(32) }, candidates: ['10.0.0.1:8000'] };
    const before = await t.kv.call('Score', request);
    expect([before.unknownModel, before.scores[0].matchedBlocks]).toEqual([true, 0]);
    expect(await scrape()).toContain('kv_indexer_score_unknown_model_total 1\n');
    // A pod publishes the model (ZMQ may drop what is sent before the subscription: republish until it lands).
    let seq = 0;
    await waitFor(() => {
      void pub.send(
        kvMessage(`kv@10.0.0.1:8000@${MODEL}`, seq++, [
          Date.now() / 1000,
          [['BlockStored', [1n, 2n], null, tokenRange(32), 16, null, null]],
          null,
        ]),
      );
      return (t.service.index as MemoryIndex).entriesOf('10.0.0.1:8000') === 2;
    }, 'the pod indexed');
    const after = await t.kv.call('Score', request);
    expect([after.unknownModel, after.scores[0].matchedBlocks]).toEqual([false, 2]);
    expect(await scrape()).toContain('kv_indexer_score_unknown_model_total 1\n');
  });

  it('Reserve, Score.speculate and AddEndpoint (no admin token) refuse host names; IP literals pass', async () => {
    const named = 'metadata.internal:80';
    const why = (field: string, v: string) =>
      `${field}: "${v}" is not <ip>:<port> (host names are refused without an admin token; see api.allowHostnameEndpoints)`;
    expect(await failure(t.kv.call('Reserve', { endpoint: named, blockKeys: ['1'], ttlMs: 100 }))).toEqual({
      code: INVALID,
      details: why('endpoint', named),
    });
    expect(
      await failure(
        t.kv.call('Score', {
          model: MODEL,
          tokens: { tokenIds: tokenRange(16) },
          speculate: { endpoint: named, ttlMs: 100 },
        }),
      ),
    ).toEqual({ code: INVALID, details: why('speculate.endpoint', named) });
    expect(await failure(t.kv.call('AddEndpoint', { endpoint: named, zmqAddress: 'tcp://10.0.0.9:5557' }))).toEqual({
      code: INVALID,
      details: why('endpoint', named),
    });
    expect(
      await failure(t.kv.call('AddEndpoint', { endpoint: '10.0.0.9:8000', zmqAddress: `tcp://${named}` })),
    ).toEqual({ code: INVALID, details: why('zmq_address', named) });
    expect(
      await failure(t.kv.call('Reserve', { endpoint: '10.0.0.1:08000', blockKeys: ['1'], ttlMs: 100 })),
    ).toMatchObject({ code: INVALID });
    // The per-rank identities and the discovery URL (the service would GET it) take the same rule.
    expect(
      await failure(
        t.kv.call('AddEndpoint', {
          endpoint: '10.0.0.9:8000',
          zmqAddress: 'tcp://10.0.0.9:5557',
          ranks: 2,
          rankEndpoints: ['10.0.0.9:8000', named],
        }),
      ),
    ).toEqual({
      code: INVALID,
      details: why('rank_endpoints[1]', named),
    });
    expect(
      await failure(t.kv.call('AddEndpoint', { endpoint: '10.0.0.9:8000', discoveryUrl: `http://${named}/v1` })),
    ).toEqual({ code: INVALID, details: why('discovery_url', named) });
    expect(
      await failure(t.kv.call('AddEndpoint', { endpoint: '10.0.0.9:8000', discoveryUrl: 'http://localhost:8000' })),
    ).toEqual({
      code: INVALID,
      details: why('discovery_url', 'localhost:8000'),
    });
    expect(t.service.transport.connectedEndpoints()).toEqual([]); // nothing was connected
    expect(await t.kv.call('Reserve', { endpoint: '[fd00::5]:8000', blockKeys: ['1'], ttlMs: 50 })).toEqual({
      reservedBlocks: 1,
    });
  });

  it('speculative entries per caller are bounded (api.maxSpeculativePerCaller = 100): RESOURCE_EXHAUSTED, nothing reserved, freed at TTL or Release', async () => {
    await new Promise((r) => setTimeout(r, 60)); // the previous test's reservation expired
    const keys = (from: number) => Array.from({ length: 60 }, (_, i) => String(from + i));
    const index = t.service.index as MemoryIndex;
    const speculative = () => index.statsSync().speculativeEntries;
    const base = speculative();
    expect(await t.kv.call('Reserve', { endpoint: '10.0.0.2:8000', blockKeys: keys(1000), ttlMs: 400 })).toEqual({
      reservedBlocks: 60,
    });
    expect(
      await failure(t.kv.call('Reserve', { endpoint: '10.0.0.2:8000', blockKeys: keys(2000), ttlMs: 400 })),
    ).toEqual({
      code: EXHAUSTED,
      details:
        'block_keys: 127.0.0.1 holds 60 speculative entries; 60 more would pass api.maxSpeculativePerCaller (100)',
    });
    expect(speculative() - base).toBe(60); // the refused call reserved nothing
    // Score.speculate counts against the same bound: 16 tokens = 1 block … 48 tokens = 3 blocks.
    const spec = (n: number) =>
      t.kv.call('Score', {
        model: MODEL,
        tokens: { tokenIds: tokenRange(16 * n, 5000) },
        speculate: { endpoint: '10.0.0.2:8000', ttlMs: 400 },
      });
    expect((await spec(40)).totalBlocks).toBe(40);
    expect(await failure(spec(1))).toMatchObject({ code: EXHAUSTED });
    // Release gives entries back at once.
    expect(await t.kv.call('Release', { endpoint: '10.0.0.2:8000', blockKeys: keys(1000).slice(0, 30) })).toEqual({
      releasedBlocks: 30,
    });
    expect((await spec(30)).totalBlocks).toBe(30);
    // After the TTL the caller's quota is free again.
    await new Promise((r) => setTimeout(r, 450));
    expect(await t.kv.call('Reserve', { endpoint: '10.0.0.2:8000', blockKeys: keys(3000), ttlMs: 400 })).toEqual({
      reservedBlocks: 60,
    });
  });
});

describe('the speculative bound with the Redis backend (shared index, real redis-server)', () => {
  let redis: RedisServer;
  let t: TestService;
  afterAll(async () => {
    await t?.stop();
    await redis?.stop();
  });

  it('refuses past api.maxSpeculativePerCaller and reserves nothing in Redis', async () => {
    redis = await startRedis();
    t = await startTestService({
      overrides: {
        index: { backend: 'redis', redisUrl: redis.url, redisKeyPrefix: 'hard:' },
        api: { maxSpeculativePerCaller: 50 },
      },
    });
    const keys = (from: number, n: number) => Array.from({ length: n }, (_, i) => String(from + i));
    expect(await t.kv.call('Reserve', { endpoint: '10.0.0.3:8000', blockKeys: keys(1, 40), ttlMs: 30_000 })).toEqual({
      reservedBlocks: 40,
    });
    expect(
      await failure(t.kv.call('Reserve', { endpoint: '10.0.0.3:8000', blockKeys: keys(100, 11), ttlMs: 30_000 })),
    ).toEqual({
      code: EXHAUSTED,
      details:
        'block_keys: 127.0.0.1 holds 40 speculative entries; 11 more would pass api.maxSpeculativePerCaller (50)',
    });
    const stats = await t.kv.call('GetStats', {});
    expect(stats.speculativeEntries).toBe('40');
    expect(
      await failure(t.kv.call('Reserve', { endpoint: 'pod-a.svc:8000', blockKeys: ['1'], ttlMs: 100 })),
    ).toMatchObject({ code: INVALID });
  });
});

describe('metrics cardinality with 16k endpoints', () => {
  let t: TestService;
  let pub: Publisher;
  const N = 16_384;

  beforeAll(async () => {
    t = await startTestService({ overrides: { endpoints: { maxTracked: N } } });
    pub = new Publisher({ sendHighWaterMark: 100_000 });
    pub.connect(t.service.subscriber.lastEndpoint!);
    const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    await waitFor(() => {
      void pub.send(kvMessage('kv@10.255.255.255:1@m', 0, [Date.now() / 1000, [], null]));
      return t.service.transport.listEndpoints().length > 0;
    }, 'subscription');
    for (let i = 0; i < N - 1; i++) await pub.send(kvMessage(`kv@${ip(i)}:8000@m`, 0, [Date.now() / 1000, [], null]));
    await waitFor(() => t.service.pipeline.figures().length === N, `${N} endpoint streams`, 30_000);
  }, 60_000);
  afterAll(async () => {
    pub?.close();
    await t?.stop();
  });

  it('a scrape names at most metrics.maxEndpointSeries (256) endpoints, folds the rest into "other", and stays small', async () => {
    const text = await (await fetch(`http://127.0.0.1:${t.api.metricsPort}/metrics`)).text();
    const applied = text.split('\n').filter((l) => l.startsWith('kv_indexer_endpoint_batches_applied_total{'));
    expect(applied).toHaveLength(257);
    expect(applied.at(-1)).toBe(`kv_indexer_endpoint_batches_applied_total{endpoint="other"} ${N - 256}`);
    expect(text).toContain(`kv_indexer_endpoint_series_folded ${N - 256}\n`);
    expect(text).toContain(`kv_indexer_endpoints{state="live"} ${N}\n`);
    expect(Buffer.byteLength(text)).toBeLessThan(120_000); // was 3.8 MB
  });

  it('Score answers correctly while the metrics are scraped', async () => {
    // How long a scrape holds the event loop is a figure for benchmarks, not an assertion here: this checks that
    // Scores interleaved with four concurrent scrapes of 16k endpoints all answer, with the right totals.
    await t.kv.call('Score', { model: 'm', tokens: { tokenIds: tokenRange(64) } }); // the connection is up
    const scrapes = Array.from({ length: 4 }, () =>
      fetch(`http://127.0.0.1:${t.api.metricsPort}/metrics`).then((r) => r.text()),
    );
    const totals: number[] = [];
    for (let i = 0; i < 100; i++) {
      const res = await t.kv.call('Score', {
        model: 'm',
        tokens: { tokenIds: tokenRange(64) },
        candidates: ['10.0.0.1:8000'],
      });
      totals.push(res.totalBlocks);
    }
    const texts = await Promise.all(scrapes);
    expect(totals).toEqual(Array(100).fill(4));
    expect(texts.map((x) => x.includes('kv_indexer_endpoint_batches_applied_total{endpoint="other"}'))).toEqual([
      true,
      true,
      true,
      true,
    ]);
  });
});
