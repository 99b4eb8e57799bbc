// The in-flight ledger's contract with a hand-driven clock, run over both implementations — in memory, and in a real
// redis-server (RedisInflightLedger): reserve, PrefillComplete, release, TTL, the bound, and refusals that change
// nothing. Then what only the Redis ledger does: two ledgers (two replicas' connections) sharing one Redis.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LedgerError,
  MemoryInflightLedger,
  type InflightLedger,
  type NewReservation,
} from '../../../../src/scoring/load/inflight.js';
import { PURGE_PER_CALL } from '../../../../src/scoring/load/ledger-script.js';
import { RedisInflightLedger } from '../../../../src/scoring/load/redis-ledger.js';
import { startRedis, type RedisServer } from '../../../support/redis-server.js';

const A = '10.0.0.1:8000';
const B = '10.0.0.1:8000@dp1';

type Make = (options: {
  maxReservations: number;
  clock?: () => number;
  newId?: () => string;
}) => InflightLedger | Promise<InflightLedger>;

let make: Make;

async function ledger(max = 10) {
  const clock = { now: 1_000 };
  let n = 0;
  const l = await make({
    maxReservations: max,
    clock: () => clock.now,
    newId: () => (++n).toString(16).padStart(32, '0'),
  });
  return { l, clock };
}

const req = (endpoint: string, prefill: number, decode: number, ttlMs = 100): NewReservation => ({
  endpoint,
  uncachedPrefillTokens: prefill,
  expectedDecodeBlocks: decode,
  ttlMs,
  predictedCachedTokens: 0,
  promptTokens: prefill,
});

async function refusal(p: Promise<unknown>): Promise<[string, string]> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LedgerError);
  return [(err as LedgerError).code, (err as LedgerError).field];
}

function contract(): void {
  it('sums reservations per endpoint identity (data-parallel ranks apart)', async () => {
    const { l } = await ledger();
    const r1 = await l.reserve(req(A, 100, 4));
    await l.reserve(req(A, 50, 2));
    await l.reserve(req(B, 7, 1));
    expect(r1).toMatchObject({
      id: '00000000000000000000000000000001',
      createdAt: 1_000,
      expiresAt: 1_100,
      prefillDone: false,
    });
    expect(await l.loads([A, B, '10.0.0.9:1'])).toEqual([
      { prefillTokens: 150, decodeBlocks: 6, reservations: 2 },
      { prefillTokens: 7, decodeBlocks: 1, reservations: 1 },
      { prefillTokens: 0, decodeBlocks: 0, reservations: 0 },
    ]);
    expect(l.size()).toBe(3);
  });

  it('PrefillComplete retires the prefill tokens, keeps the decode pressure; release retires the rest', async () => {
    const { l } = await ledger();
    const r = await l.reserve(req(A, 100, 4));
    await l.prefillComplete(r.id);
    expect(await l.loads([A])).toEqual([{ prefillTokens: 0, decodeBlocks: 4, reservations: 1 }]);
    await l.release(r.id);
    expect(await l.loads([A])).toEqual([{ prefillTokens: 0, decodeBlocks: 0, reservations: 0 }]);
    expect(l.retired).toEqual({ prefill_complete: 1, release: 1, ttl: 0 });
  });

  it('zero counts (a fully cached prompt, no output expected) go through the whole lifecycle', async () => {
    const { l, clock } = await ledger();
    const r = await l.reserve(req(A, 0, 0));
    await l.reserve(req(A, 5, 0, 50));
    await l.prefillComplete(r.id);
    expect(await l.loads([A])).toEqual([{ prefillTokens: 5, decodeBlocks: 0, reservations: 2 }]);
    await l.release(r.id);
    clock.now = 1_050;
    expect(await l.loads([A])).toEqual([{ prefillTokens: 0, decodeBlocks: 0, reservations: 0 }]);
    const s = await l.reserve(req(A, 0, 0));
    await l.release(s.id);
    expect(l.retired).toEqual({ prefill_complete: 1, release: 2, ttl: 1 });
  });

  it('release before PrefillComplete retires both parts', async () => {
    const { l } = await ledger();
    const r = await l.reserve(req(A, 100, 4));
    await l.release(r.id);
    expect(await l.loads([A])).toEqual([{ prefillTokens: 0, decodeBlocks: 0, reservations: 0 }]);
  });

  it('the TTL retires a reservation nobody released (counted as ttl); later calls on it are NOT_FOUND', async () => {
    const { l, clock } = await ledger();
    const r = await l.reserve(req(A, 100, 4, 100));
    await l.reserve(req(A, 10, 1, 500));
    clock.now = 1_099;
    expect(l.size()).toBe(2);
    clock.now = 1_100;
    expect(await l.loads([A])).toEqual([{ prefillTokens: 10, decodeBlocks: 1, reservations: 1 }]);
    expect(l.retired.ttl).toBe(1);
    expect(await refusal(l.prefillComplete(r.id))).toEqual(['not_found', 'reservation_id']);
    expect(await refusal(l.release(r.id))).toEqual(['not_found', 'reservation_id']);
  });

  it('a second PrefillComplete is FAILED_PRECONDITION and changes nothing', async () => {
    const { l } = await ledger();
    const r = await l.reserve(req(A, 100, 4));
    await l.prefillComplete(r.id);
    expect(await refusal(l.prefillComplete(r.id))).toEqual(['failed_precondition', 'reservation_id']);
    expect(await l.loads([A])).toEqual([{ prefillTokens: 0, decodeBlocks: 4, reservations: 1 }]);
    expect(l.retired.prefill_complete).toBe(1);
  });

  it('unknown ids are NOT_FOUND', async () => {
    const { l } = await ledger();
    expect(await refusal(l.release('f'.repeat(32)))).toEqual(['not_found', 'reservation_id']);
  });

  it('refuses negative, fractional and absurd counts, and bad TTLs, reserving nothing', async () => {
    const { l } = await ledger();
    expect(await refusal(l.reserve(req(A, -1, 0)))).toEqual(['invalid_argument', 'uncached_prefill_tokens']);
    expect(await refusal(l.reserve(req(A, 1.5, 0)))).toEqual(['invalid_argument', 'uncached_prefill_tokens']);
    expect(await refusal(l.reserve(req(A, 10_000_001, 0)))).toEqual(['invalid_argument', 'uncached_prefill_tokens']);
    expect(await refusal(l.reserve(req(A, 1, 10_000_001)))).toEqual(['invalid_argument', 'expected_decode_blocks']);
    expect(await refusal(l.reserve(req(A, 1, 1, 0)))).toEqual(['invalid_argument', 'reservation_ttl_ms']);
    expect(await refusal(l.reserve(req(A, 1, 1, 3_600_001)))).toEqual(['invalid_argument', 'reservation_ttl_ms']);
    expect(l.size()).toBe(0);
    expect(await l.loads([A])).toEqual([{ prefillTokens: 0, decodeBlocks: 0, reservations: 0 }]);
  });

  it('bounded: beyond maxReservations RESOURCE_EXHAUSTED; an expiry or release makes room again', async () => {
    const { l, clock } = await ledger(2);
    const r1 = await l.reserve(req(A, 1, 1, 50));
    await l.reserve(req(A, 1, 1, 500));
    expect(await refusal(l.reserve(req(A, 1, 1)))).toEqual(['resource_exhausted', 'reserve']);
    expect(await l.loads([A])).toEqual([{ prefillTokens: 2, decodeBlocks: 2, reservations: 2 }]);
    clock.now = 1_050; // r1 expires
    expect(await l.loads([A])).toEqual([{ prefillTokens: 1, decodeBlocks: 1, reservations: 1 }]);
    expect(await refusal(l.release(r1.id))).toEqual(['not_found', 'reservation_id']);
    await l.reserve(req(A, 1, 1));
    expect(l.size()).toBe(2);
  });

  it('cancel undoes a reservation without counting it as retired', async () => {
    const { l } = await ledger();
    const r = await l.reserve(req(A, 100, 4));
    await l.cancel(r.id);
    expect(l.size()).toBe(0);
    expect(l.retired).toEqual({ prefill_complete: 0, release: 0, ttl: 0 });
  });

  it('ids are 128 random bits in hex by default', async () => {
    const l = await make({ maxReservations: 10 });
    const a = await l.reserve(req(A, 1, 1));
    const b = await l.reserve(req(A, 1, 1));
    expect(a.id).toMatch(/^[0-9a-f]{32}$/);
    expect(b.id).not.toBe(a.id);
  });
}

describe('MemoryInflightLedger', () => {
  beforeAll(() => {
    make = (o) => new MemoryInflightLedger(o);
  });
  contract();
});

describe('RedisInflightLedger (real redis-server)', () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  let prefixes = 0;
  const connect = () => {
    const c = new Redis(server.url);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await server?.stop();
  });

  describe('the contract', () => {
    beforeAll(() => {
      make = (o) => new RedisInflightLedger({ ...o, client: connect(), keyPrefix: `u${++prefixes}:` });
    });
    contract();
  });

  it('two replicas (two connections) share one ledger: loads, PrefillComplete and release reach every reservation', async () => {
    const keyPrefix = `shared${++prefixes}:`;
    const clock = { now: 5_000 };
    const opts = { keyPrefix, maxReservations: 3, clock: () => clock.now };
    const one = new RedisInflightLedger({ ...opts, client: connect() });
    const two = new RedisInflightLedger({ ...opts, client: connect() });
    const r = await one.reserve({ ...req(A, 300, 5, 1_000), predictedCachedTokens: 64, promptTokens: 364 });
    await two.reserve(req(B, 20, 1, 200));
    expect(await two.loads([A, B])).toEqual([
      { prefillTokens: 300, decodeBlocks: 5, reservations: 1 },
      { prefillTokens: 20, decodeBlocks: 1, reservations: 1 },
    ]);
    const done = await two.prefillComplete(r.id);
    expect(done).toEqual({
      id: r.id,
      endpoint: A,
      uncachedPrefillTokens: 300,
      expectedDecodeBlocks: 5,
      ttlMs: 1_000,
      predictedCachedTokens: 64,
      promptTokens: 364,
      createdAt: 5_000,
      expiresAt: 6_000,
      prefillDone: true,
    });
    expect(await refusal(one.prefillComplete(r.id))).toEqual(['failed_precondition', 'reservation_id']);
    expect(await one.loads([A])).toEqual([{ prefillTokens: 0, decodeBlocks: 5, reservations: 1 }]);
    // The bound is the ledger's, not a replica's.
    await one.reserve(req(A, 1, 1, 1_000));
    expect(await refusal(two.reserve(req(A, 1, 1)))).toEqual(['resource_exhausted', 'reserve']);
    // B's reservation expires: whichever replica calls first retires it (counted there), both stop counting it.
    clock.now = 5_200;
    expect(await one.loads([B])).toEqual([{ prefillTokens: 0, decodeBlocks: 0, reservations: 0 }]);
    expect(await two.loads([B])).toEqual([{ prefillTokens: 0, decodeBlocks: 0, reservations: 0 }]);
    expect([one.retired.ttl, two.retired.ttl]).toEqual([1, 0]);
    expect([one.size(), two.size()]).toEqual([2, 2]);
    expect((await one.release(r.id)).prefillDone).toBe(true);
    expect(await refusal(two.release(r.id))).toEqual(['not_found', 'reservation_id']);
    expect(await two.loads([A])).toEqual([{ prefillTokens: 1, decodeBlocks: 1, reservations: 1 }]);
    expect(one.retired).toEqual({ prefill_complete: 0, release: 1, ttl: 1 });
    expect(two.retired).toEqual({ prefill_complete: 1, release: 0, ttl: 0 });
    // One script call per operation.
    expect(one.roundTrips).toEqual({ loads: 2, reserve: 2, prefill: 1, release: 1, cancel: 0 });
    expect(two.roundTrips).toEqual({ loads: 3, reserve: 2, prefill: 1, release: 1, cancel: 0 });
  });

  it(`one call retires at most ${PURGE_PER_CALL} expired reservations; the next calls drain the rest`, async () => {
    const clock = { now: 1_000 };
    const l = new RedisInflightLedger({
      client: connect(),
      keyPrefix: `p${++prefixes}:`,
      maxReservations: 10_000,
      clock: () => clock.now,
    });
    for (let i = 0; i < PURGE_PER_CALL + 5; i++) await l.reserve(req(A, 2, 1, 100));
    await l.reserve(req(A, 7, 3, 500));
    clock.now = 1_100;
    expect(await l.loads([A])).toEqual([{ prefillTokens: 17, decodeBlocks: 8, reservations: 6 }]);
    expect(await l.loads([A])).toEqual([{ prefillTokens: 7, decodeBlocks: 3, reservations: 1 }]);
    expect(l.retired.ttl).toBe(PURGE_PER_CALL + 5);
  });

  it('without an injected clock the TTL runs on the Redis server clock', async () => {
    const l = new RedisInflightLedger({ client: connect(), keyPrefix: `t${++prefixes}:`, maxReservations: 10 });
    const before = Date.now();
    const r = await l.reserve(req(A, 10, 1, 80));
    expect(r.expiresAt - r.createdAt).toBe(80);
    expect(Math.abs(r.createdAt - before)).toBeLessThan(60_000);
    for (;;) {
      const [load] = await l.loads([A]);
      if (load.reservations === 0) break;
      expect(load).toEqual({ prefillTokens: 10, decodeBlocks: 1, reservations: 1 });
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(l.retired.ttl).toBe(1);
    expect(await refusal(l.prefillComplete(r.id))).toEqual(['not_found', 'reservation_id']);
  });

  it('leaves no key behind once every reservation is retired', async () => {
    const keyPrefix = `k${++prefixes}:`;
    const raw = connect();
    const l = new RedisInflightLedger({ client: raw, keyPrefix, maxReservations: 10 });
    const r = await l.reserve(req(A, 10, 1, 60_000));
    await l.prefillComplete(r.id);
    await l.release(r.id);
    expect(await raw.keys(`${keyPrefix}*`)).toEqual([]);
  });

  it('Redis down: every operation rejects with an unavailable IndexerError, no LedgerError', async () => {
    const own = await startRedis();
    const c = new Redis(own.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true });
    await c.connect();
    c.on('error', () => undefined);
    const l = new RedisInflightLedger({ client: c, keyPrefix: 'down:', maxReservations: 10 });
    await own.kill();
    for (const call of [() => l.loads([A]), () => l.reserve(req(A, 1, 1)), () => l.release('0'.repeat(32))]) {
      const err = (await call().then(
        () => null,
        (e: unknown) => e,
      )) as { code?: string } | null;
      expect(err?.code).toBe('unavailable');
    }
    c.disconnect();
    await own.stop();
  });
});
