// Two service replicas sharing one Redis (index and in-flight ledger, select.ledger auto), each with its own real
// gRPC client: a reservation made by Select on one replica is priced by the other's Select, PrefillComplete and
// ReleaseReservation reach it through either, its TTL ends it on both, and the ledger's refusals and Redis faults
// reach the caller as gRPC statuses. Figures as in grpc-select.test.ts: block size 16, 1 token = 1 ms of prefill,
// 10 ms per in-flight decode block, default output 32 tokens (2 decode blocks).
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RedisIndex } from '../../src/index/index.js';
import { startRedis, startCluster, type RedisCluster, type RedisServer } from '../support/redis-server.js';
import { startTestService, type TestService } from '../support/service.js';

const A = '10.0.0.1:8000';
const B = '10.0.0.2:8000';
/** 5 blocks (80 tokens): A holds the first 4, B the first 2. */
const PROMPT = { model: 'm', blockKeys: { keys: ['1', '2', '3', '4', '5'] } };
const KEYS = [1n, 2n, 3n, 4n, 5n];

let prefixes = 0;

async function replicas(index: Record<string, unknown>, select: Record<string, unknown> = {}, n = 2) {
  const keyPrefix = `rl${++prefixes}:`;
  const out: TestService[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      await startTestService({
        overrides: {
          zmq: { addresses: [] },
          index: { backend: 'redis', redisKeyPrefix: keyPrefix, redisCommandTimeoutMs: 500, ...index },
          api: { speculativeTtlMs: 600_000 },
          select: {
            prefillTokensPerSecond: 1000,
            decodePenaltyMs: 10,
            defaultOutputTokens: 32,
            throughputAlpha: 0.5,
            ...select,
          },
        },
      }),
    );
  }
  const idx = out[0].service.index as RedisIndex;
  idx.add(A, 'GPU', new BigUint64Array(KEYS.slice(0, 4)), KEYS[0]);
  idx.add(B, 'GPU', new BigUint64Array(KEYS.slice(0, 2)), KEYS[0]);
  await idx.flush();
  running.push(...out);
  return out;
}

const running: TestService[] = [];
afterEach(async () => {
  for (const t of running.splice(0)) await t.stop();
});

type Cand = { endpoint: string; inflightPrefillTokens: string; inflightDecodeBlocks: string; predictedTtftMs: number };
const figures = (res: { candidates: Cand[] }) =>
  res.candidates.map((c) => [c.endpoint, c.inflightPrefillTokens, c.inflightDecodeBlocks, c.predictedTtftMs]);

async function refused(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  const err = (await p.then(
    () => null,
    (e: unknown) => e,
  )) as { code: number; details: string } | null;
  expect(err).not.toBeNull();
  return { code: err!.code, details: err!.details };
}

async function metric(t: TestService, line: RegExp): Promise<string[]> {
  const text = await (await fetch(`http://127.0.0.1:${t.api.metricsPort}/metrics`)).text();
  return text.split('\n').filter((l) => line.test(l));
}

describe('the Redis in-flight ledger shared by two replicas (single server)', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('Select+reserve on A is in-flight load in B; PrefillComplete on B retires its prefill, Release on A the rest', async () => {
    const [one, two] = await replicas({ redisUrl: redis.url });
    const first = await one.kv.call('Select', { ...PROMPT, candidates: [A, B], reserve: true });
    expect(first.endpoint).toBe(A);
    // A owes 16 prefill tokens and 2 decode blocks, and holds all 5 blocks (the 5th speculative, in the shared
    // index): 16 ms + 2 × 10 ms = 36 ms. B: 48 uncached tokens, nothing in flight.
    expect(figures(await two.kv.call('Select', { ...PROMPT, candidates: [A, B] }))).toEqual([
      [A, '16', '2', 36],
      [B, '0', '0', 48],
    ]);
    expect((await two.kv.call('GetStats', {})).inflightReservations).toBe('1');

    expect(await two.kv.call('PrefillComplete', { reservationId: first.reservationId, cachedTokens: 64 })).toEqual({
      endpoint: A,
      predictedCachedTokens: 64,
      prefillTokensPerSecond: 1000,
    });
    expect(figures(await one.kv.call('Select', { ...PROMPT, candidates: [A] }))).toEqual([[A, '0', '2', 20]]);
    const again = await refused(one.kv.call('PrefillComplete', { reservationId: first.reservationId }));
    expect(again.code).toBe(status.FAILED_PRECONDITION);
    expect(again.details).toBe(`reservation_id: reservation ${first.reservationId} already had its PrefillComplete`);

    expect(await one.kv.call('ReleaseReservation', { reservationId: first.reservationId })).toEqual({
      endpoint: A,
      prefillCompleted: true,
    });
    expect(figures(await two.kv.call('Select', { ...PROMPT, candidates: [A] }))).toEqual([[A, '0', '0', 0]]);
    const gone = await refused(two.kv.call('ReleaseReservation', { reservationId: first.reservationId }));
    expect(gone.code).toBe(status.NOT_FOUND);

    // Each replica counts what its own calls did; the ledger's round trips: one script per Select's loads and per
    // reservation, one per PrefillComplete / Release.
    expect(await metric(one, /^kv_indexer_reservations_retired_total/)).toEqual([
      'kv_indexer_reservations_retired_total{reason="prefill_complete"} 0',
      'kv_indexer_reservations_retired_total{reason="release"} 1',
      'kv_indexer_reservations_retired_total{reason="ttl"} 0',
    ]);
    expect(await metric(one, /^kv_indexer_select_ledger_redis_round_trips_total/)).toEqual([
      'kv_indexer_select_ledger_redis_round_trips_total{op="loads"} 2',
      'kv_indexer_select_ledger_redis_round_trips_total{op="reserve"} 1',
      'kv_indexer_select_ledger_redis_round_trips_total{op="prefill"} 1',
      'kv_indexer_select_ledger_redis_round_trips_total{op="release"} 1',
      'kv_indexer_select_ledger_redis_round_trips_total{op="cancel"} 0',
    ]);
    expect(await metric(two, /^kv_indexer_select_ledger_redis_round_trips_total\{op="(loads|prefill)"/)).toEqual([
      'kv_indexer_select_ledger_redis_round_trips_total{op="loads"} 2',
      'kv_indexer_select_ledger_redis_round_trips_total{op="prefill"} 1',
    ]);
  });

  it('the TTL ends a reservation on both replicas; unknown ids are NOT_FOUND', async () => {
    const [one, two] = await replicas({ redisUrl: redis.url });
    const r = await one.kv.call('Select', { ...PROMPT, candidates: [B], reserve: true, reservationTtlMs: 2_000 });
    // B: 48 uncached tokens + 2 decode blocks → 48 + 20 = 68 ms while it lasts (then its 5 blocks are speculative).
    expect(figures(await two.kv.call('Select', { ...PROMPT, candidates: [B] }))).toEqual([[B, '48', '2', 68]]);
    const load = async (t: TestService) => figures(await t.kv.call('Select', { ...PROMPT, candidates: [B] }))[0];
    // Waits on the state (no timing asserted): Selects on two until the reservation stops counting.
    while ((await load(two))[1] !== '0') await new Promise((resolve) => setTimeout(resolve, 25));
    expect(await load(two)).toEqual([B, '0', '0', 0]);
    expect(await load(one)).toEqual([B, '0', '0', 0]);
    const expired = await refused(one.kv.call('PrefillComplete', { reservationId: r.reservationId }));
    expect(expired.code).toBe(status.NOT_FOUND);
    const unknown = await refused(two.kv.call('ReleaseReservation', { reservationId: 'ab'.repeat(16) }));
    expect(unknown.code).toBe(status.NOT_FOUND);
    expect(unknown.details).toBe(`reservation_id: no reservation ${'ab'.repeat(16)} (unknown, released or expired)`);
    expect(await metric(two, /^kv_indexer_reservations_retired_total\{reason="ttl"\}/)).toEqual([
      'kv_indexer_reservations_retired_total{reason="ttl"} 1',
    ]);
  });

  it('the bound is the ledger’s: RESOURCE_EXHAUSTED on B once A filled it; absurd counts store nothing', async () => {
    const [one, two] = await replicas({ redisUrl: redis.url }, { maxReservations: 2 });
    await one.kv.call('Select', { ...PROMPT, candidates: [A], reserve: true });
    await one.kv.call('Select', { ...PROMPT, candidates: [A], reserve: true });
    const full = await refused(two.kv.call('Select', { ...PROMPT, candidates: [B], reserve: true }));
    expect(full.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(full.details).toBe('reserve: 2 reservations in flight, at most select.maxReservations (2)');
    const absurd = await refused(
      two.kv.call('Select', { ...PROMPT, candidates: [B], reserve: true, expectedOutputTokens: 10_000_001 }),
    );
    expect(absurd.code).toBe(status.INVALID_ARGUMENT);
    expect(absurd.details).toBe('expected_output_tokens: 10000001 is absurd (at most 10000000)');
    const ttl = await refused(
      two.kv.call('Select', { ...PROMPT, candidates: [B], reserve: true, reservationTtlMs: 3_600_001 }),
    );
    expect(ttl.code).toBe(status.INVALID_ARGUMENT);
    // B got nothing from the refused calls; A still owes its two reservations.
    expect(figures(await two.kv.call('Select', { ...PROMPT, candidates: [A, B] }))).toEqual([
      [A, '16', '4', 56],
      [B, '0', '0', 48],
    ]);
    expect((await two.kv.call('GetStats', {})).inflightReservations).toBe('2');
  });

  it('select.ledger memory keeps reservations per replica; redis without a Redis index is refused at start', async () => {
    const [one, two] = await replicas({ redisUrl: redis.url }, { ledger: 'memory' });
    await one.kv.call('Select', { ...PROMPT, candidates: [B], reserve: true });
    expect(figures(await one.kv.call('Select', { ...PROMPT, candidates: [B] }))).toEqual([[B, '48', '2', 68]]);
    // two sees the reservation's speculative blocks in the shared index, but not its in-flight load.
    expect(figures(await two.kv.call('Select', { ...PROMPT, candidates: [B] }))).toEqual([[B, '0', '0', 0]]);
    const err = await startTestService({ overrides: { zmq: { addresses: [] }, select: { ledger: 'redis' } } }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toBe('select.ledger: redis needs index.backend redis (the ledger shares its connection)');
  });

  it('Redis stopped: Select, PrefillComplete and Release are UNAVAILABLE', async () => {
    const own = await startRedis();
    try {
      const [one] = await replicas({ redisUrl: own.url }, {}, 1);
      const r = await one.kv.call('Select', { ...PROMPT, candidates: [A], reserve: true });
      await own.kill();
      for (const [method, req] of [
        ['Select', { ...PROMPT, candidates: [A] }],
        ['PrefillComplete', { reservationId: r.reservationId }],
        ['ReleaseReservation', { reservationId: r.reservationId }],
      ] as const) {
        const err = await refused(one.kv.call(method, req));
        expect([method, err.code]).toEqual([method, status.UNAVAILABLE]);
      }
      // The status names the ledger (the Select above failed at the index lookup or the ledger read, whichever first).
      const prefill = await refused(one.kv.call('PrefillComplete', { reservationId: r.reservationId }));
      expect(prefill.details).toMatch(/^redis in-flight ledger unavailable \(prefill\): /);
    } finally {
      await own.stop();
    }
  });
});

describe('the Redis in-flight ledger on a 3-master cluster', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('a reservation made on one replica loads the other; PrefillComplete and Release through either', async () => {
    const nodes = cluster.startupNodes.map((n) => `${n.host}:${n.port}`);
    const [one, two] = await replicas({ redisCluster: nodes });
    const first = await one.kv.call('Select', { ...PROMPT, candidates: [A, B], reserve: true });
    expect(figures(await two.kv.call('Select', { ...PROMPT, candidates: [A, B] }))).toEqual([
      [A, '16', '2', 36],
      [B, '0', '0', 48],
    ]);
    await two.kv.call('PrefillComplete', { reservationId: first.reservationId });
    expect(figures(await one.kv.call('Select', { ...PROMPT, candidates: [A] }))).toEqual([[A, '0', '2', 20]]);
    await two.kv.call('ReleaseReservation', { reservationId: first.reservationId });
    expect(figures(await one.kv.call('Select', { ...PROMPT, candidates: [A] }))).toEqual([[A, '0', '0', 0]]);
  });
});
