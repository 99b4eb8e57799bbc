// The memory in-flight ledger with a hand-driven clock: reserve, PrefillComplete, release, TTL, the bound, and
// refusals that change nothing.
import { describe, expect, it } from 'vitest';
import { LedgerError, MemoryInflightLedger, type NewReservation } from '../../../../src/scoring/load/inflight.js';

const A = '10.0.0.1:8000';
const B = '10.0.0.1:8000@dp1';

function ledger(max = 10) {
  const clock = { now: 1_000 };
  let n = 0;
  const l = new MemoryInflightLedger({
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

describe('MemoryInflightLedger', () => {
  it('sums reservations per endpoint identity (data-parallel ranks apart)', async () => {
    const { l } = ledger();
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
    const { l } = ledger();
    const r = await l.reserve(req(A, 100, 4));
    await l.prefillComplete(r.id);
    expect(await l.loads([A])).toEqual([{ prefillTokens: 0, decodeBlocks: 4, reservations: 1 }]);
    await l.release(r.id);
    expect(await l.loads([A])).toEqual([{ prefillTokens: 0, decodeBlocks: 0, reservations: 0 }]);
    expect(l.retired).toEqual({ prefill_complete: 1, release: 1, ttl: 0 });
  });

  it('release before PrefillComplete retires both parts', async () => {
    const { l } = ledger();
    const r = await l.reserve(req(A, 100, 4));
    await l.release(r.id);
    expect(await l.loads([A])).toEqual([{ prefillTokens: 0, decodeBlocks: 0, reservations: 0 }]);
  });

  it('the TTL retires a reservation nobody released (counted as ttl); later calls on it are NOT_FOUND', async () => {
    const { l, clock } = ledger();
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
    const { l } = ledger();
    const r = await l.reserve(req(A, 100, 4));
    await l.prefillComplete(r.id);
    expect(await refusal(l.prefillComplete(r.id))).toEqual(['failed_precondition', 'reservation_id']);
    expect(await l.loads([A])).toEqual([{ prefillTokens: 0, decodeBlocks: 4, reservations: 1 }]);
    expect(l.retired.prefill_complete).toBe(1);
  });

  it('unknown ids are NOT_FOUND', async () => {
    const { l } = ledger();
    expect(await refusal(l.release('f'.repeat(32)))).toEqual(['not_found', 'reservation_id']);
  });

  it('refuses negative, fractional and absurd counts, and bad TTLs, reserving nothing', async () => {
    const { l } = ledger();
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
    const { l, clock } = ledger(2);
    const r1 = await l.reserve(req(A, 1, 1, 50));
    await l.reserve(req(A, 1, 1, 500));
    expect(await refusal(l.reserve(req(A, 1, 1)))).toEqual(['resource_exhausted', 'reserve']);
    expect(await l.loads([A])).toEqual([{ prefillTokens: 2, decodeBlocks: 2, reservations: 2 }]);
    clock.now = 1_050; // r1 expires
    expect(l.get(r1.id)).toBeUndefined();
    await l.reserve(req(A, 1, 1));
    expect(l.size()).toBe(2);
  });

  it('cancel undoes a reservation without counting it as retired', async () => {
    const { l } = ledger();
    const r = await l.reserve(req(A, 100, 4));
    await l.cancel(r.id);
    expect(l.size()).toBe(0);
    expect(l.retired).toEqual({ prefill_complete: 0, release: 0, ttl: 0 });
  });

  it('ids are 128 random bits in hex by default', async () => {
    const l = new MemoryInflightLedger({ maxReservations: 10 });
    const a = await l.reserve(req(A, 1, 1));
    const b = await l.reserve(req(A, 1, 1));
    expect(a.id).toMatch(/^[0-9a-f]{32}$/);
    expect(b.id).not.toBe(a.id);
  });
});
