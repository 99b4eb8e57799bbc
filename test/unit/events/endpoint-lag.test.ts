import { describe, expect, it } from 'vitest';
import { EventPipeline, Ingestor } from '../../../src/events/index.js';
import { MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { BlockHasher } from '../../../src/keys/index.js';
import { kvMessage } from '../../support/zmq.js';

const YEAR_S = 365 * 24 * 3600;

function pipelineAt(clock: () => number) {
  const tiers = new TierRegistry();
  const index = new MemoryIndex({ tiers });
  const ingestor = new Ingestor({ hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }), writer: index, tiers });
  return new EventPipeline(ingestor, { warn: () => undefined, info: () => undefined }, { clock });
}

const lagOf = (p: EventPipeline, identity: string) =>
  p.listEndpoints().find((e) => e.identity === identity)!.lagSeconds;

/**
 * Issue 17, bug 8: a recording replayed today carries last year's publisher timestamps, and endpoint_lag_seconds
 * showed a year. A stream whose first timestamp is more than MAX_TIMESTAMP_SKEW_SECONDS (300 s) from the receive
 * time is rebased on the receive time; a live publisher with a sane clock keeps its own timestamps.
 */
describe('endpoint lag with replayed (old) timestamps', () => {
  it('a year-old recording shows the lag since its batches arrived, not a year', async () => {
    let now = 1_800_000_000_000;
    const p = pipelineAt(() => now);
    const recordedAt = now / 1000 - YEAR_S;
    p.handle(kvMessage('kv@10.0.0.1:8000@m', 0, [recordedAt, [], null]));
    await p.idle();
    expect(lagOf(p, '10.0.0.1:8000')).toBe(0);
    now += 4_000; // 4 s later, a batch recorded 1.5 s after the first
    p.handle(kvMessage('kv@10.0.0.1:8000@m', 1, [recordedAt + 1.5, [], null]));
    await p.idle();
    expect(lagOf(p, '10.0.0.1:8000')).toBeCloseTo(2.5, 6); // progress of the recording vs the wall clock
  });

  it('a live publisher 2 s behind shows 2 s (no rebase within 300 s of skew)', async () => {
    let now = 1_800_000_000_000;
    const p = pipelineAt(() => now);
    p.handle(kvMessage('kv@10.0.0.2:8000@m', 0, [now / 1000 - 2, [], null]));
    await p.idle();
    expect(lagOf(p, '10.0.0.2:8000')).toBeCloseTo(2, 6);
    now += 1_000;
    expect(lagOf(p, '10.0.0.2:8000')).toBeCloseTo(3, 6);
  });
});
