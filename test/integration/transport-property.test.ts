import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventPipeline, Ingestor } from '../../src/events/index.js';
import type { SimBatch } from '../../src/sim/publisher/fleet.js';
import { SimPublisher, seqBytes } from '../../src/sim/publisher/publisher.js';
import type { ExpectedState } from '../../src/sim/publisher/scenarios.js';
import { MemoryIndex, TierRegistry } from '../../src/index/index.js';
import { BlockHasher } from '../../src/keys/index.js';
import { expectedView, observedState } from '../support/fixture-check.js';
import { chatTraffic, MODEL } from '../support/transport.js';

const A = '10.0.0.1:8000';
const quiet = { warn: () => undefined, info: () => undefined };

describe('property: whatever the live channel loses or repeats, replay restores the loss-free state', () => {
  let pub: SimPublisher;
  let batches: SimBatch[];
  let expected: ExpectedState;

  beforeAll(async () => {
    ({ batches, expected } = chatTraffic(
      [{ endpoint: A, model: MODEL, gpuBlocks: 40, cpuBlocks: 24, style: { encoding: 'map', hashes: 'int' } }],
      24,
      12,
    ));
    pub = new SimPublisher({
      topic: `kv@${A}@${MODEL}`,
      endpoint: 'tcp://127.0.0.1:*',
      replayEndpoint: 'tcp://127.0.0.1:*',
      replayLayout: 'old',
    });
    await pub.start();
    for (const b of batches) await pub.publish(b.payload); // nobody subscribes: the replay buffer has them all
  });
  afterAll(async () => pub?.close());

  it('each seq is applied exactly once and the index equals the engines', async () => {
    const fate = fc.constantFrom('deliver', 'deliver', 'drop', 'twice');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fate, { minLength: batches.length, maxLength: batches.length }),
        fc.integer({ min: 1, max: 8 }),
        async (fates, queueCapacity) => {
          const tiers = new TierRegistry();
          const index = new MemoryIndex({ tiers });
          const ingestor = new Ingestor({
            hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }),
            writer: index,
            tiers,
          });
          const pipeline = new EventPipeline(ingestor, quiet, { stream: { queueCapacity, replayCooldownMs: 0 } });
          const origin = { source: 'test', replay: pub.replayAddress };
          for (let i = 0; i < batches.length; i++) {
            const frames = [Buffer.from(batches[i].topic), seqBytes(batches[i].seq), batches[i].payload];
            const f = i === batches.length - 1 ? 'deliver' : fates[i];
            if (f !== 'drop') pipeline.handle(frames, origin);
            if (f === 'twice') pipeline.handle(frames, origin);
            if (i % 5 === 4) await pipeline.idle();
          }
          await pipeline.idle();
          expect(await observedState(index, expected)).toEqual(expectedView(expected));
          const s = pipeline.stream(A)!;
          expect([s.last, s.stats.applied, s.degradedReason, pipeline.counters.unrecoverable]).toEqual([
            BigInt(batches.length - 1),
            batches.length,
            null,
            {},
          ]);
          await pipeline.close();
          await index.close();
        },
      ),
      { numRuns: 25 },
    );
  });
});
