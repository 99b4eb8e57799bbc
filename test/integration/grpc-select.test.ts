// Select, PrefillComplete and ReleaseReservation through a real gRPC client against the real service: blocks indexed
// on endpoints, an in-memory LoadSource standing in for the Prometheus scraper (tested by its own suite), exact
// per-candidate figures. Settings chosen so that figures are easy to check by hand: block size 16, prefill 1000
// tokens/s (1 token = 1 ms), 10 ms of decode penalty per running request or in-flight decode block, 100 prompt tokens
// per waiting request, default output 32 tokens (2 decode blocks), KV-usage gate 0.9.
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { embeddedConfig, startEmbedded, type EmbeddedService } from '../../src/service/embedded.js';
import { PromptServiceFrontend } from '../../src/service/prompt-frontend.js';
import type { LoadSource, ScrapedLoad } from '../../src/scoring/load/index.js';
import { tieHash } from '../../src/scoring/load/cost-model.js';
import { grpcClient } from '../support/grpc-client.js';

const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
const C = '10.0.0.3:8000';
const MODEL = 'm';
/** The prompt: 5 blocks (80 tokens). A holds the first 4, B the first 2, C none. */
const PROMPT = { model: MODEL, blockKeys: { keys: ['1', '2', '3', '4', '5'] } };

/** The stand-in scraper: figures set by the test. */
class FixedLoads implements LoadSource {
  readonly map = new Map<string, ScrapedLoad>();
  get(endpoint: string) {
    return this.map.get(endpoint);
  }
}

let running: { svc: EmbeddedService; kv: ReturnType<typeof grpcClient>; prompts: PromptServiceFrontend | null } | null =
  null;

async function start(
  select: Record<string, unknown> = {},
  api: Record<string, unknown> = {},
  loads?: LoadSource,
  demoModel = false,
) {
  const config = embeddedConfig({
    zmq: { addresses: [] },
    api: { speculativeTtlMs: 600_000, ...api },
    select: {
      prefillTokensPerSecond: 1000,
      decodePenaltyMs: 10,
      meanPromptTokens: 100,
      defaultOutputTokens: 32,
      kvUsageGate: 0.9,
      throughputAlpha: 0.5,
      ...select,
    },
  });
  const prompts = demoModel
    ? await PromptServiceFrontend.load('fixtures/models/demo.yaml', config.keys, config.images.fetch)
    : null;
  const svc = await startEmbedded(config, prompts, { loads });
  svc.service.index.add(A, 'GPU', new BigUint64Array([1n, 2n, 3n, 4n]));
  svc.service.index.add(B, 'GPU', new BigUint64Array([1n, 2n]));
  const kv = grpcClient(svc.grpcAddress, 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer');
  running = { svc, kv, prompts };
  return { svc, kv };
}

afterEach(async () => {
  running?.kv.close();
  await running?.svc.stop();
  await running?.prompts?.close();
  running = null;
});

/** A candidate's figures as the answer carries them, with defaults for what a test does not set. */
function cand(endpoint: string, f: Partial<Record<string, unknown>>) {
  return {
    endpoint,
    cachedBlocks: 0,
    cachedBlocksByTier: {},
    uncachedPrefillTokens: 80,
    inflightPrefillTokens: '0',
    inflightDecodeBlocks: '0',
    running: 0,
    waiting: 0,
    kvUsage: 0,
    loadScraped: false,
    prefillTokensPerSecond: 1000,
    predictedTtftMs: 80,
    cost: 80,
    excludedReason: '',
    encodeTokens: 0,
    encodeMs: 0,
    ...f,
  };
}

async function refused(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  const err = (await p.then(
    () => null,
    (e: unknown) => e,
  )) as { code: number; details: string } | null;
  expect(err).not.toBeNull();
  return { code: err!.code, details: err!.details };
}

async function metricsText(svc: EmbeddedService): Promise<string> {
  return (await fetch(`http://127.0.0.1:${svc.api.metricsPort}/metrics`)).text();
}

describe('Select over gRPC', () => {
  it('policies: exact choice and per-candidate figures', async () => {
    const { kv } = await start();
    const res = await kv.call('Select', { ...PROMPT, candidates: [A, B, C] });
    // Default policy cache+load: A 16 uncached tokens → 16 ms, B 48 → 48 ms, C 80 → 80 ms.
    expect(res).toEqual({
      endpoint: A,
      reservationId: '',
      policy: 'cache+load',
      totalBlocks: 5,
      tokenCount: 80,
      blockSize: 16,
      candidates: [
        cand(A, {
          cachedBlocks: 4,
          cachedBlocksByTier: { GPU: 4 },
          uncachedPrefillTokens: 16,
          predictedTtftMs: 16,
          cost: 16,
        }),
        cand(B, {
          cachedBlocks: 2,
          cachedBlocksByTier: { GPU: 2 },
          uncachedPrefillTokens: 48,
          predictedTtftMs: 48,
          cost: 48,
        }),
        cand(C, {}),
      ],
    });
    // cache: cost = uncached tokens, A wins.
    const cache = await kv.call('Select', { ...PROMPT, candidates: [C, B, A], policy: 'cache' });
    expect(cache.endpoint).toBe(A);
    expect(cache.candidates.map((c: { cost: number }) => c.cost)).toEqual([80, 48, 16]);
    // load: the whole prompt everywhere (80 ms each): a tie, settled by the hash of (last block key 5, endpoint).
    const load = await kv.call('Select', { ...PROMPT, candidates: [A, B, C], policy: 'load' });
    expect(load.candidates.map((c: { predictedTtftMs: number }) => c.predictedTtftMs)).toEqual([80, 80, 80]);
    expect(load.endpoint).toBe([A, B, C].sort((x, y) => tieHash(5n, x) - tieHash(5n, y))[0]);
    // The same request again: the same answer.
    expect((await kv.call('Select', { ...PROMPT, candidates: [A, B, C], policy: 'load' })).endpoint).toBe(
      load.endpoint,
    );
  });

  it('scraped load: fresh figures count, stale ones are ignored, the KV-usage gate excludes', async () => {
    const loads = new FixedLoads();
    loads.map.set(A, { running: 2, waiting: 1, kvUsage: 0.5, ageMs: 100, stale: false });
    loads.map.set(B, { running: 50, waiting: 50, kvUsage: 0.99, ageMs: 60_000, stale: true });
    loads.map.set(C, { running: 0, waiting: 0, kvUsage: 0.95, ageMs: 100, stale: false });
    const { kv } = await start({}, {}, loads);
    const res = await kv.call('Select', { ...PROMPT, candidates: [A, B, C] });
    // A: queued 1 waiting × 100 = 100; (100 + 16) ms + 2 running × 10 ms = 136 ms. B: stale → only 48 ms.
    // C: 80 ms, but KV usage 0.95 > 0.9 → excluded. B wins.
    expect(res.endpoint).toBe(B);
    expect(res.candidates).toEqual([
      cand(A, {
        cachedBlocks: 4,
        cachedBlocksByTier: { GPU: 4 },
        uncachedPrefillTokens: 16,
        running: 2,
        waiting: 1,
        kvUsage: 0.5,
        loadScraped: true,
        predictedTtftMs: 136,
        cost: 136,
      }),
      cand(B, {
        cachedBlocks: 2,
        cachedBlocksByTier: { GPU: 2 },
        uncachedPrefillTokens: 48,
        predictedTtftMs: 48,
        cost: 48,
      }),
      cand(C, { kvUsage: 0.95, loadScraped: true, excludedReason: 'kv_usage_over_gate' }),
    ]);
    // Only C as candidate: every candidate over the gate → none excluded, C chosen.
    const only = await kv.call('Select', { ...PROMPT, candidates: [C] });
    expect([only.endpoint, only.candidates[0].excludedReason]).toEqual([C, '']);
  });

  it('reserve → in-flight load in the next Select; PrefillComplete retires the prefill part, ReleaseReservation the rest', async () => {
    const { svc, kv } = await start();
    const first = await kv.call('Select', { ...PROMPT, candidates: [A, B, C], reserve: true });
    expect(first.endpoint).toBe(A);
    expect(first.reservationId).toMatch(/^[0-9a-f]{32}$/);

    // A now owes 16 prefill tokens and 2 decode blocks (32 output tokens / 16), and holds all 5 blocks (the 5th as a
    // speculative entry of the reservation): (16 queued + 0 uncached) ms + 2 × 10 ms = 36 ms. B: 48 ms.
    const second = await kv.call('Select', { ...PROMPT, candidates: [A, B] });
    expect(second.candidates[0]).toEqual(
      cand(A, {
        cachedBlocks: 5,
        cachedBlocksByTier: { GPU: 5 },
        uncachedPrefillTokens: 0,
        inflightPrefillTokens: '16',
        inflightDecodeBlocks: '2',
        predictedTtftMs: 36,
        cost: 36,
      }),
    );
    expect(second.endpoint).toBe(A);

    // The engine reports 64 cached tokens and a prefill of 8 ms: 80 − 64 = 16 tokens in 8 ms = 2000 tokens/s;
    // EWMA with alpha 0.5 from 1000 → 1500 tokens/s.
    const done = await kv.call('PrefillComplete', {
      reservationId: first.reservationId,
      cachedTokens: 64,
      prefillMs: 8,
    });
    expect(done).toEqual({ endpoint: A, predictedCachedTokens: 64, prefillTokensPerSecond: 1500 });
    // Prefill retired; decode pressure stays: 0 ms of prefill + 2 × 10 ms = 20 ms.
    const third = await kv.call('Select', { ...PROMPT, candidates: [A] });
    expect(third.candidates[0]).toMatchObject({
      inflightPrefillTokens: '0',
      inflightDecodeBlocks: '2',
      prefillTokensPerSecond: 1500,
      predictedTtftMs: 20,
    });

    expect(await kv.call('ReleaseReservation', { reservationId: first.reservationId })).toEqual({
      endpoint: A,
      prefillCompleted: true,
    });
    const fourth = await kv.call('Select', { ...PROMPT, candidates: [A] });
    expect(fourth.candidates[0]).toMatchObject({
      inflightPrefillTokens: '0',
      inflightDecodeBlocks: '0',
      predictedTtftMs: 0,
    });

    const stats = await kv.call('GetStats', {});
    expect([
      stats.inflightReservations,
      stats.selectCalls,
      stats.calibratedPrefills,
      stats.cachedTokensPredicted,
      stats.cachedTokensActual,
    ]).toEqual(['0', '4', '1', '64', '64']);
    const text = await metricsText(svc);
    expect(text).toContain('kv_indexer_select_total{policy="cache+load",outcome="reserved"} 1');
    expect(text).toContain('kv_indexer_select_total{policy="cache+load",outcome="chosen"} 3');
    expect(text).toContain('kv_indexer_inflight_reservations 0');
    expect(text).toContain('kv_indexer_reservations_retired_total{reason="prefill_complete"} 1');
    expect(text).toContain('kv_indexer_reservations_retired_total{reason="release"} 1');
    expect(text).toContain('kv_indexer_select_cached_tokens_predicted_total 64');
    expect(text).toContain('kv_indexer_select_cached_tokens_actual_total 64');
    // Error (64 − 64) / 80 = 0: in the le="0" bucket.
    expect(text).toContain('kv_indexer_select_cached_tokens_error_ratio_bucket{le="0"} 1');
    expect(text).toContain('kv_indexer_select_cached_tokens_error_ratio_bucket{le="-0.01"} 0');
  });

  it('expected_output_tokens sets the decode blocks; a reservation nobody releases expires at its TTL', async () => {
    const { svc, kv } = await start();
    // A long-lived reservation: ⌈100 / 16⌉ = 7 decode blocks, 48 prefill tokens on B.
    await kv.call('Select', { ...PROMPT, candidates: [B], reserve: true, expectedOutputTokens: 100 });
    const one = await kv.call('Select', { ...PROMPT, candidates: [B] });
    expect(one.candidates[0]).toMatchObject({ inflightPrefillTokens: '48', inflightDecodeBlocks: '7' });
    // A short-lived one on B too (80 − 80 = 0 prefill tokens now that B holds the 5 blocks speculatively, 2 decode
    // blocks); nobody releases it.
    const short = await kv.call('Select', { ...PROMPT, candidates: [B], reserve: true, reservationTtlMs: 50 });
    // Wait for the state, not a time: GetStats until only the long-lived reservation is left.
    for (let i = 0; i < 500 && (await kv.call('GetStats', {})).inflightReservations !== '1'; i++)
      await new Promise((res) => setTimeout(res, 10));
    const after = await kv.call('Select', { ...PROMPT, candidates: [B] });
    expect(after.candidates[0]).toMatchObject({ inflightPrefillTokens: '48', inflightDecodeBlocks: '7' });
    const late = await refused(kv.call('PrefillComplete', { reservationId: short.reservationId }));
    expect(late.code).toBe(status.NOT_FOUND);
    expect(late.details).toMatch(/^reservation_id: no reservation [0-9a-f]{32}/);
    expect(await metricsText(svc)).toContain('kv_indexer_reservations_retired_total{reason="ttl"} 1');
  });

  it('bad input: each refused with its code and field, nothing changed', async () => {
    const { svc, kv } = await start();
    const r = await kv.call('Select', { ...PROMPT, candidates: [A], reserve: true });
    const figures = async () => (await kv.call('Select', { ...PROMPT, candidates: [A] })).candidates[0];
    const before = await figures();
    expect(before).toMatchObject({ inflightPrefillTokens: '16', inflightDecodeBlocks: '2' });

    const cases: [string, object, number, RegExp][] = [
      ['PrefillComplete', { reservationId: 'f'.repeat(32) }, status.NOT_FOUND, /^reservation_id: no reservation/],
      ['ReleaseReservation', { reservationId: '0'.repeat(32) }, status.NOT_FOUND, /^reservation_id: no reservation/],
      [
        'PrefillComplete',
        { reservationId: 'not-an-id' },
        status.INVALID_ARGUMENT,
        /^reservation_id: must be the 32 hex digits/,
      ],
      ['PrefillComplete', { reservationId: '' }, status.INVALID_ARGUMENT, /^reservation_id: is required/],
      [
        'PrefillComplete',
        { reservationId: r.reservationId, cachedTokens: -1 },
        status.INVALID_ARGUMENT,
        /^cached_tokens: must be a non-negative integer/,
      ],
      [
        'PrefillComplete',
        { reservationId: r.reservationId, cachedTokens: 10_000_001 },
        status.INVALID_ARGUMENT,
        /^cached_tokens: 10000001 is absurd/,
      ],
      [
        'PrefillComplete',
        { reservationId: r.reservationId, prefillMs: -5 },
        status.INVALID_ARGUMENT,
        /^prefill_ms: must be a finite number/,
      ],
      [
        'Select',
        { ...PROMPT, candidates: [A], policy: 'fastest' },
        status.INVALID_ARGUMENT,
        /^policy: "fastest" is not one of cache, load, cache\+load/,
      ],
      ['Select', { ...PROMPT, candidates: [] }, status.INVALID_ARGUMENT, /^candidates: is required/],
      [
        'Select',
        { ...PROMPT, candidates: ['nope'] },
        status.INVALID_ARGUMENT,
        /^candidates\[0\]: "nope" is not <host>:<port>/,
      ],
      [
        'Select',
        { ...PROMPT, candidates: [A], reserve: true, expectedOutputTokens: 10_000_001 },
        status.INVALID_ARGUMENT,
        /^expected_output_tokens: 10000001 is absurd/,
      ],
      [
        'Select',
        { ...PROMPT, candidates: [A], reserve: true, reservationTtlMs: 3_600_001 },
        status.INVALID_ARGUMENT,
        /^reservation_ttl_ms: must be at most 3600000/,
      ],
      [
        'Select',
        { model: MODEL, candidates: [A] },
        status.INVALID_ARGUMENT,
        /^input: one of chat, prompt, tokens or block_keys is required/,
      ],
    ];
    for (const [method, req, code, details] of cases) {
      const err = await refused(kv.call(method, req));
      expect([method, err.code]).toEqual([method, code]);
      expect(err.details).toMatch(details);
    }
    expect(await figures()).toEqual(before);
    expect((await kv.call('GetStats', {})).inflightReservations).toBe('1');

    // The reservation is intact: its PrefillComplete works once, the second is FAILED_PRECONDITION and changes nothing.
    await kv.call('PrefillComplete', { reservationId: r.reservationId });
    const twice = await refused(kv.call('PrefillComplete', { reservationId: r.reservationId }));
    expect(twice).toEqual({
      code: status.FAILED_PRECONDITION,
      details: `reservation_id: reservation ${r.reservationId} already had its PrefillComplete`,
    });
    expect(await figures()).toMatchObject({ inflightPrefillTokens: '0', inflightDecodeBlocks: '2' });
    const text = await metricsText(svc);
    expect(text).toContain('kv_indexer_select_total{policy="invalid",outcome="invalid_argument"} 1');
    expect(text).toContain('kv_indexer_select_total{policy="cache+load",outcome="invalid_argument"} 5');
    expect(text).toContain('kv_indexer_reservations_retired_total{reason="prefill_complete"} 1');
  });

  it('the bound on reservations: RESOURCE_EXHAUSTED beyond select.maxReservations, no reservation and no speculative entries', async () => {
    const { kv } = await start({ maxReservations: 2 });
    await kv.call('Select', { ...PROMPT, candidates: [A], reserve: true });
    await kv.call('Select', { ...PROMPT, candidates: [A], reserve: true });
    const full = await refused(kv.call('Select', { ...PROMPT, candidates: [C], reserve: true }));
    expect(full.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(full.details).toBe('reserve: 2 reservations in flight, at most select.maxReservations (2)');
    expect((await kv.call('GetStats', {})).inflightReservations).toBe('2');
    // C got no speculative entries from the refused call, and no in-flight load.
    const c = await kv.call('Select', { ...PROMPT, candidates: [C] });
    expect(c.candidates[0]).toEqual(cand(C, {}));
    const score = await kv.call('Score', { ...PROMPT, candidates: [C] });
    expect(score.scores[0].matchedBlocks).toBe(0);
  });

  it('data-parallel ranks are endpoints of their own: a reservation on A@dp1 loads only A@dp1', async () => {
    const { kv } = await start();
    const A1 = `${A}@dp1`;
    const r = await kv.call('Select', { ...PROMPT, candidates: [A1], reserve: true });
    expect(r.endpoint).toBe(A1);
    const both = await kv.call('Select', { ...PROMPT, candidates: [A, A1] });
    // A: 4 cached blocks, 16 uncached tokens, nothing in flight. A@dp1: all 5 blocks now speculative, 80 prefill
    // tokens and 2 decode blocks in flight → 80 ms + 20 ms = 100 ms.
    expect(
      both.candidates.map(
        (c: {
          endpoint: string;
          inflightPrefillTokens: string;
          inflightDecodeBlocks: string;
          predictedTtftMs: number;
        }) => [c.endpoint, c.inflightPrefillTokens, c.inflightDecodeBlocks, c.predictedTtftMs],
      ),
    ).toEqual([
      [A, '0', '0', 16],
      [A1, '80', '2', 100],
    ]);
  });

  it("reserving refuses host names as candidates (the speculative entries follow Score.speculate's IP-literal rule)", async () => {
    const { kv } = await start();
    const err = await refused(kv.call('Select', { ...PROMPT, candidates: [A, 'pod-b.local:8000'], reserve: true }));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/^candidates\[1\]: "pod-b.local:8000" is not <ip>:<port>/);
    expect((await kv.call('GetStats', {})).inflightReservations).toBe('0');
    // Without reserve a named candidate is only looked up, as in Score.
    expect((await kv.call('Select', { ...PROMPT, candidates: [A, 'pod-b.local:8000'] })).endpoint).toBe(A);
  });

  it('prompt input goes the Score path: same tokens, blocks and cached blocks as Score', async () => {
    const { svc, kv } = await start({}, {}, undefined, true);
    const model = 'Qwen/Qwen2-VL-2B-Instruct';
    const prompt = 'The quick brown fox jumps over the lazy dog. '.repeat(12);
    const keys = (await kv.call('ComputeBlockKeys', { model, prompt })).blockKeys as string[];
    expect(keys.length).toBeGreaterThan(3);
    // C holds the first 3 blocks of this prompt.
    svc.service.index.add(C, 'GPU', BigUint64Array.from(keys.slice(0, 3), BigInt));
    const score = await kv.call('Score', { model, prompt, candidates: [A, C] });
    const sel = await kv.call('Select', { model, prompt, candidates: [A, C] });
    expect([sel.tokenCount, sel.totalBlocks]).toEqual([score.tokenCount, score.totalBlocks]);
    expect(sel.candidates.map((c: { cachedBlocks: number }) => c.cachedBlocks)).toEqual([0, 3]);
    expect(sel.candidates[1].uncachedPrefillTokens).toBe(score.tokenCount - 48);
    expect(sel.endpoint).toBe(C);
  });
});
