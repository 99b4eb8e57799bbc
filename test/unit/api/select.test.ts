// SelectApi in process with a failing index: a reservation whose speculative entries cannot be written is undone
// (no ledger entry, the caller's speculative quota given back) and the call answers UNAVAILABLE.
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../../src/api/errors.js';
import { SelectApi } from '../../../src/api/select.js';
import { SpeculationQuota, type Speculate } from '../../../src/api/speculation-quota.js';
import { MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { BlockHasher } from '../../../src/keys/index.js';
import { TierWeights } from '../../../src/scoring/index.js';
import { MemoryInflightLedger, ThroughputTable } from '../../../src/scoring/load/index.js';

const A = '10.0.0.1:8000';

function setup(failReserve: boolean, speculate?: Speculate) {
  const tiers = new TierRegistry();
  const index = new MemoryIndex({ tiers, shards: 2 });
  index.add(A, 'GPU', new BigUint64Array([1n, 2n]));
  if (failReserve) index.reserve = async () => Promise.reject(new Error('connection reset'));
  const ledger = new MemoryInflightLedger({ maxReservations: 10 });
  const quota = new SpeculationQuota(100);
  const api = new SelectApi({
    index,
    tiers,
    hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }),
    weights: new TierWeights(),
    prompts: null,
    limits: { maxCandidates: 8, maxPromptTokens: 4096, maxItems: 4, speculativeTtlMs: 2000, failOpen: true },
    settings: {
      defaultPolicy: 'cache+load',
      reservationTtlMs: 1000,
      decodePenaltyMs: 1,
      meanPromptTokens: 100,
      kvUsageGate: 0.95,
      encodeTokensPerSecond: 20_000,
      defaultOutputTokens: 16,
    },
    ledger,
    throughput: new ThroughputTable(1000, 0.5),
    quota,
    speculate,
  });
  return { api, ledger, quota, index };
}

const req = {
  model: 'm',
  input: 'blockKeys' as const,
  blockKeys: { keys: ['1', '2', '3'] },
  candidates: [A],
  tierWeights: {},
  policy: '',
  reserve: true,
  reservationTtlMs: 0,
};

describe('SelectApi reservation: all or nothing', () => {
  it('records the ledger entry and the speculative entries (3 blocks counted for the caller)', async () => {
    const { api, ledger, quota } = setup(false);
    const res = await api.select(req, undefined, '10.9.9.9');
    expect(res.reservationId).toMatch(/^[0-9a-f]{32}$/);
    expect([ledger.size(), quota.held('10.9.9.9')]).toEqual([1, 3]);
  });

  it('a failing speculative write undoes the reservation and the quota, and answers UNAVAILABLE', async () => {
    const { api, ledger, quota } = setup(true);
    const err = await api.select(req, undefined, '10.9.9.9').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect([(err as ApiError).code, (err as ApiError).message]).toEqual([
      'unavailable',
      'index backend failed: connection reset',
    ]);
    expect([ledger.size(), quota.held('10.9.9.9'), ledger.retired]).toEqual([
      0,
      0,
      { prefill_complete: 0, release: 0, ttl: 0 },
    ]);
  });

  it('a speculative quota already full refuses before anything is recorded', async () => {
    const { api, ledger, quota } = setup(false);
    quota.take('10.9.9.9', 99, 60_000, 'block_keys');
    const err = (await api.select(req, undefined, '10.9.9.9').catch((e: unknown) => e)) as ApiError;
    expect([err.code, err.field]).toEqual(['resource_exhausted', 'reserve']);
    expect([ledger.size(), quota.held('10.9.9.9')]).toEqual([0, 99]);
  });
});

// api.processes: the speculative entries go through a hook (a Reserve applied on every replica, quota included).
describe('SelectApi reservation with a speculate hook', () => {
  it('hands the pick’s entries to the hook (the quota is taken there, not here) and records the ledger entry', async () => {
    const calls: unknown[][] = [];
    const { api, ledger, quota, index } = setup(false, async (...args) => void calls.push(args));
    const res = await api.select(req, undefined, '10.9.9.9');
    expect(res.reservationId).toMatch(/^[0-9a-f]{32}$/);
    expect(calls).toEqual([['10.9.9.9', A, new BigUint64Array([1n, 2n, 3n]), 2000, 'reserve']]);
    expect([ledger.size(), quota.held('10.9.9.9'), (await index.stats()).speculativeEntries]).toEqual([1, 0, 0]);
  });

  it('a refusal from the hook undoes the ledger entry and is the call’s answer', async () => {
    const refusal = new ApiError('resource_exhausted', 'reserve', 'over the bound on another replica');
    const { api, ledger } = setup(false, () => Promise.reject(refusal));
    const err = await api.select(req, undefined, '10.9.9.9').catch((e: unknown) => e);
    expect(err).toBe(refusal);
    expect([ledger.size(), ledger.retired]).toEqual([0, { prefill_complete: 0, release: 0, ttl: 0 }]);
  });

  it('a speculative quota already full here refuses before the ledger or the hook is touched', async () => {
    const calls: unknown[][] = [];
    const { api, ledger, quota } = setup(false, async (...args) => void calls.push(args));
    quota.take('10.9.9.9', 99, 60_000, 'block_keys');
    const err = (await api.select(req, undefined, '10.9.9.9').catch((e: unknown) => e)) as ApiError;
    expect([err.code, err.field, err.message]).toEqual([
      'resource_exhausted',
      'reserve',
      'reserve: 10.9.9.9 holds 99 speculative entries; 3 more would pass api.maxSpeculativePerCaller (100)',
    ]);
    expect([ledger.size(), quota.held('10.9.9.9'), calls.length]).toEqual([0, 99, 0]);
  });
});
