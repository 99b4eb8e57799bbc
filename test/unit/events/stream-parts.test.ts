import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { EventPipeline, Ingestor } from '../../../src/events/index.js';
import { Backlog } from '../../../src/events/stream/backlog.js';
import { MAX_TIMESTAMP_SKEW_SECONDS, StreamSequence } from '../../../src/events/stream/sequence-rules.js';
import type { QueuedBatch } from '../../../src/events/stream/types.js';
import { MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { BlockHasher } from '../../../src/keys/index.js';

/** The pieces of events/stream/ apart from sockets: sequence state, backlog, and the stream's read-only status. */

const batch = (seq: number): QueuedBatch => ({ seq: BigInt(seq), ts: 100 + seq, model: 'm', events: [] });

describe('StreamSequence', () => {
  it('tracks the last applied batch, what comes next, and forgets on restart', () => {
    const s = new StreamSequence();
    const clock = () => 1_000_000;
    expect([s.last, s.next, s.covers(0n), s.verdict(0n, 1, 10n), s.verdict(3n, 1, 10n)]).toEqual([
      null,
      0n,
      false,
      'first',
      'join',
    ]);
    s.applied(0n, 1_000, 1_000_000, clock);
    s.applied(1n, 1_001, 1_001_000, clock);
    expect([s.last, s.lastTs, s.next, s.covers(1n), s.covers(2n)]).toEqual([1n, 1_001, 2n, true, false]);
    expect([
      s.verdict(2n, 1_002, 10n),
      s.verdict(5n, 1_002, 10n),
      s.verdict(1n, 1_001, 10n),
      s.verdict(1n, 1_002, 10n),
    ]).toEqual(['apply', 'gap', 'duplicate', 'restart']);
    s.forget();
    expect([s.last, s.lastTs, s.next]).toEqual([null, -Infinity, 0n]);
  });

  it('rebases a far-off publisher clock on the receive time, decided by the first batch', () => {
    const near = new StreamSequence();
    near.applied(0n, 1_000, 1_010_000, () => 0);
    expect(near.lagTs).toBe(1_000);
    const far = new StreamSequence();
    // A replayed batch has no receive time: the clock gives it.
    far.applied(0n, 5, undefined, () => (5 + MAX_TIMESTAMP_SKEW_SECONDS + 1) * 1000);
    expect(far.lagTs).toBe(5 + MAX_TIMESTAMP_SKEW_SECONDS + 1);
    far.applied(1n, 6, 0, () => 0);
    expect(far.lagTs).toBe(6 + MAX_TIMESTAMP_SKEW_SECONDS + 1);
  });

  it('tells replay overlap from duplicates, and skips an undecodable replayed batch', () => {
    const s = new StreamSequence();
    s.applied(4n, 1, 1_000, () => 0);
    s.replayed(4n);
    expect([s.replayCovered(3n), s.replayCovered(4n), s.replayCovered(5n)]).toEqual([true, true, false]);
    s.skip(6n);
    expect([s.last, s.next]).toEqual([6n, 7n]);
    s.forget();
    expect(s.replayCovered(3n)).toBe(false);
  });
});

describe('Backlog', () => {
  it('drops batches beyond its capacity and remembers the highest dropped seq for the resync', () => {
    const b = new Backlog(2);
    expect([b.push(batch(0)), b.push(batch(1)), b.push(batch(5)), b.push(batch(3))]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect([b.length, b.resyncDue]).toEqual([2, true]);
    expect(b.takeResync()).toBe(5n);
    expect([b.resyncDue, b.takeResync()]).toEqual([false, null]);
    expect([b.shift()!.seq, b.shift()!.seq, b.shift()]).toEqual([0n, 1n, undefined]);
  });

  it('pauses the socket above 256 queued batches (not during a replay) and resumes it at 64', async () => {
    const b = new Backlog(1000);
    for (let i = 0; i < 257; i++) b.push(batch(i));
    expect(b.pressure(true, false)).toBeUndefined();
    expect(b.pressure(false, true)).toBeUndefined();
    let resumed = false;
    void b.pressure(false, false)!.then(() => (resumed = true));
    expect(b.pressed).toBe(true);
    while (b.length > 65) b.shift();
    b.release(false, false);
    await Promise.resolve();
    expect([resumed, b.pressed]).toEqual([false, true]);
    b.shift();
    b.release(false, false);
    await Promise.resolve();
    expect([resumed, b.pressed]).toEqual([true, false]);
  });
});

describe('EndpointStream status', () => {
  it('is a snapshot: changing it changes nothing in the stream', async () => {
    const tiers = new TierRegistry();
    const index = new MemoryIndex({ tiers });
    const ingestor = new Ingestor({ hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }), writer: index, tiers });
    const pipeline = new EventPipeline(
      ingestor,
      { warn: () => undefined, info: () => undefined },
      { format: 'vllm', clock: () => 7_000 },
    );
    const seq0 = Buffer.alloc(8);
    const payload = encode([7, [['BlockStored', [1n], null, Array.from({ length: 16 }, (_, t) => t), 16]], null], {
      useBigInt64: true,
    });
    pipeline.handle([Buffer.from('kv@10.0.0.9:8000@m'), seq0, Buffer.from(payload)]);
    await pipeline.idle();
    const stream = pipeline.stream('10.0.0.9:8000')!;
    const status = stream.status();
    expect(status).toMatchObject({
      identity: '10.0.0.9:8000',
      model: 'm',
      lastSeq: 0n,
      lastEventAt: 7_000,
      queued: 0,
      replaying: false,
    });
    expect(status.stats).toMatchObject({ applied: 1, gaps: 0 });
    status.stats.applied = 99;
    status.lastSeq = 5n;
    expect([stream.stats.applied, stream.last, stream.status().stats.applied]).toEqual([1, 0n, 1]);
  });
});
