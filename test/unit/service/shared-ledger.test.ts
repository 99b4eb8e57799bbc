import { describe, expect, it } from 'vitest';
import { IndexUnavailableError } from '../../../src/index/index.js';
import { LedgerError } from '../../../src/scoring/load/index.js';
import { LedgerHost, ProcessLedger, type LedgerAnswer, type LedgerCall } from '../../../src/service/shared-ledger.js';

/**
 * Two serving processes' ledgers on one primary's host, as serving-worker.ts and serving-processes.ts wire them: each
 * call and answer crosses a structured clone (the cluster's advanced serialization) and a turn of the event loop.
 */
function fleet(maxReservations: number, clock?: () => number) {
  const host = new LedgerHost(maxReservations, clock);
  const ledgers: ProcessLedger[] = [];
  for (let i = 0; i < 2; i++) {
    const ledger: ProcessLedger = new ProcessLedger((id: number, call: LedgerCall) => {
      const sent = structuredClone(call);
      setImmediate(() => {
        void host.answer(sent).then((answer: LedgerAnswer) => {
          const back = structuredClone(answer);
          setImmediate(() => ledger.settle(id, back));
        });
      });
    });
    ledgers.push(ledger);
  }
  return { a: ledgers[0], b: ledgers[1] };
}

const RESERVATION = {
  endpoint: '10.0.0.1:8000',
  uncachedPrefillTokens: 900,
  expectedDecodeBlocks: 8,
  ttlMs: 30_000,
  predictedCachedTokens: 124,
  promptTokens: 1024,
};

describe('the primary-held in-flight ledger (api.processes)', () => {
  it('a reservation made through one process is seen, completed and released through another', async () => {
    const { a, b } = fleet(100);
    const res = await a.reserve(RESERVATION);
    expect(res).toMatchObject({ ...RESERVATION, prefillDone: false });
    expect(res.id).toMatch(/^[0-9a-f]{32}$/);
    expect(await b.loads(['10.0.0.1:8000', '10.0.0.2:8000'])).toEqual([
      { prefillTokens: 900, decodeBlocks: 8, reservations: 1 },
      { prefillTokens: 0, decodeBlocks: 0, reservations: 0 },
    ]);
    expect(b.size()).toBe(1);
    expect(await b.prefillComplete(res.id)).toMatchObject({ id: res.id, endpoint: '10.0.0.1:8000', prefillDone: true });
    expect(await a.loads(['10.0.0.1:8000'])).toEqual([{ prefillTokens: 0, decodeBlocks: 8, reservations: 1 }]);
    expect(await b.release(res.id)).toMatchObject({ id: res.id, prefillDone: true });
    expect(await a.loads(['10.0.0.1:8000'])).toEqual([{ prefillTokens: 0, decodeBlocks: 0, reservations: 0 }]);
    expect(a.size()).toBe(0);
    // Each process counts the retirements it made.
    expect([a.retired, b.retired]).toEqual([
      { prefill_complete: 0, release: 0, ttl: 0 },
      { prefill_complete: 1, release: 1, ttl: 0 },
    ]);
  });

  it('refusals come back as the same LedgerError, and change nothing', async () => {
    const { a, b } = fleet(1);
    const unknown = 'f'.repeat(32);
    await expect(b.release(unknown)).rejects.toEqual(
      new LedgerError('not_found', 'reservation_id', `no reservation ${unknown} (unknown, released or expired)`),
    );
    await expect(b.release(unknown)).rejects.toBeInstanceOf(LedgerError);
    const res = await a.reserve(RESERVATION);
    await expect(b.reserve(RESERVATION)).rejects.toMatchObject({
      code: 'resource_exhausted',
      field: 'reserve',
      message: '1 reservations in flight, at most select.maxReservations (1)',
    });
    await expect(b.reserve({ ...RESERVATION, ttlMs: 0 })).rejects.toMatchObject({
      code: 'invalid_argument',
      field: 'reservation_ttl_ms',
    });
    await b.prefillComplete(res.id);
    await expect(a.prefillComplete(res.id)).rejects.toMatchObject({ code: 'failed_precondition' });
    expect(b.retired.release).toBe(0);
    expect(await a.loads(['10.0.0.1:8000'])).toEqual([{ prefillTokens: 0, decodeBlocks: 8, reservations: 1 }]);
  });

  it('a TTL expiry is counted once, by the process whose call purged it', async () => {
    let now = 1_000;
    const { a, b } = fleet(100, () => now);
    await a.reserve({ ...RESERVATION, ttlMs: 100 });
    await a.reserve({ ...RESERVATION, ttlMs: 500 });
    now += 200;
    expect(await b.loads(['10.0.0.1:8000'])).toEqual([{ prefillTokens: 900, decodeBlocks: 8, reservations: 1 }]);
    now += 400;
    await a.cancel('0'.repeat(32)); // an unknown id: nothing to undo, but the call purges what expired
    expect([a.retired.ttl, b.retired.ttl, a.size(), b.size()]).toEqual([1, 1, 0, 1]);
  });

  it('counts each expiry once when the primary takes calls that arrive together (no turn between them)', async () => {
    // The primary gets several IPC messages per read and starts each before any of them resumes.
    let now = 1_000;
    const host = new LedgerHost(100, () => now);
    await host.answer({ op: 'reserve', reservation: { ...RESERVATION, ttlMs: 100 } });
    await host.answer({ op: 'reserve', reservation: { ...RESERVATION, ttlMs: 100 } });
    now += 200;
    const answers = await Promise.all([
      host.answer({ op: 'cancel', reservationId: '0'.repeat(32) }),
      host.answer({ op: 'loads', endpoints: ['10.0.0.1:8000'] }),
      host.answer({ op: 'loads', endpoints: ['10.0.0.1:8000'] }),
    ]);
    expect(answers.map((a) => [a.expired, a.live])).toEqual([
      [2, 0],
      [0, 0],
      [0, 0],
    ]);
  });

  it('a primary that does not answer is the backend unavailable (UNAVAILABLE at the API), after the wait', async () => {
    const silent = new ProcessLedger(() => undefined, 20);
    await expect(silent.loads(['10.0.0.1:8000'])).rejects.toEqual(
      new IndexUnavailableError("the primary's in-flight ledger did not answer loads within 20 ms"),
    );
    await expect(silent.reserve(RESERVATION)).rejects.toBeInstanceOf(IndexUnavailableError);
  });
});
