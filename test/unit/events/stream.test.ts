import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { EventPipeline, Ingestor } from '../../../src/events/index.js';
import { MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { BlockHasher } from '../../../src/keys/index.js';

const A = '10.0.0.1:8000';
const quiet = { warn: () => undefined, info: () => undefined };
const seq8 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

function setup(stream: { sliceMs?: number } = {}) {
  const tiers = new TierRegistry();
  const index = new MemoryIndex({ tiers });
  const ingestor = new Ingestor({ hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }), writer: index, tiers });
  return { index, ingestor, pipeline: new EventPipeline(ingestor, quiet, { stream }) };
}

describe('per-endpoint stream worker', () => {
  it('applies a long batch in chunks, yielding to the event loop between them once the slice is spent, counted as one batch', async () => {
    // sliceMs 0: every chunk boundary finds the turn's slice spent.
    const { index, ingestor, pipeline } = setup({ sliceMs: 0 });
    const events = Array.from({ length: 600 }, (_, i) => [
      'BlockStored',
      [BigInt(i + 1)],
      null,
      Array.from({ length: 16 }, (_, t) => i * 16 + t),
      16,
    ]);
    pipeline.handle([Buffer.from(`kv@${A}@m`), seq8(0), Buffer.from(encode([1, events, null], { useBigInt64: true }))]);
    let appliedWhenTicked = -1;
    setImmediate(() => (appliedWhenTicked = pipeline.stream(A)!.stats.applied));
    await pipeline.idle();
    expect(appliedWhenTicked).toBe(0); // the event loop ran while the batch was half applied
    expect([index.entriesOf(A), ingestor.counters.batches, pipeline.stream(A)!.stats.applied]).toEqual([600, 1, 1]);
  });

  it('keeps endpoints apart: rank identities, models and sequence counters', async () => {
    const { index, pipeline } = setup();
    const batch = (rank: number | null, hash: number) =>
      Buffer.from(
        encode([1, [['BlockStored', [BigInt(hash)], null, Array.from({ length: 16 }, (_, t) => t), 16]], rank], {
          useBigInt64: true,
        }),
      );
    pipeline.handle([Buffer.from(`kv@${A}@m`), seq8(0), batch(0, 1)]);
    pipeline.handle([Buffer.from(`kv@${A}@m`), seq8(0), batch(1, 2)]);
    pipeline.handle([Buffer.from(`kv@${A}@m`), seq8(1), batch(null, 3)]);
    pipeline.handle([Buffer.from(`kv@${A}@m`), seq8(1), batch(2, 4)]);
    await pipeline.idle();
    expect(pipeline.listEndpoints().map((e) => [e.identity, e.rank, e.lastSeq, e.state, e.degradedReason])).toEqual([
      [A, 0, 1n, 'live', null],
      [`${A}@dp1`, 1, 0n, 'live', null],
      [`${A}@dp2`, 2, 1n, 'degraded', 'joined_no_replay'],
    ]);
    expect([index.entriesOf(A), index.entriesOf(`${A}@dp1`), index.entriesOf(`${A}@dp2`)]).toEqual([1, 1, 1]);
    expect(pipeline.counters.replaysFailed).toEqual({ no_endpoint: 1 });
  });

  it('takes SGLang payloads when configured (attn_dp_rank names the rank)', async () => {
    const tiers = new TierRegistry();
    const index = new MemoryIndex({ tiers });
    const ingestor = new Ingestor({ hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }), writer: index, tiers });
    const pipeline = new EventPipeline(ingestor, quiet, { format: 'sglang' });
    const tokens = Array.from({ length: 16 }, (_, t) => t);
    pipeline.handle([
      Buffer.from(`kv@${A}@m`),
      seq8(0),
      Buffer.from(encode([1, [['BlockStored', [-5n], null, tokens, 16]], 1], { useBigInt64: true })),
    ]);
    await pipeline.idle();
    expect(pipeline.listEndpoints().map((e) => [e.identity, e.lastSeq])).toEqual([[`${A}@dp1`, 0n]]);
    expect(index.entriesOf(`${A}@dp1`)).toBe(1);
  });
});
