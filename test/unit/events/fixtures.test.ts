import { describe, expect, it } from 'vitest';
import { EventPipeline, Ingestor } from '../../../src/events/index.js';
import { readRecording } from '../../../src/events/recording/format.js';
import { playIntoPipeline } from '../../../src/events/recording/player.js';
import { MemoryIndex, TierRegistry } from '../../../src/index/index.js';
import { BlockHasher } from '../../../src/keys/index.js';
import { expectedView, loadExpected, observedState, RECORDINGS } from '../../support/fixture-check.js';

const quiet = { warn: () => undefined, info: () => undefined };

describe.each(['fleet-mixed', 'offload-pressure'])('fixture recording %s, fed in-process', (name) => {
  it('gives the index state recorded beside it', async () => {
    const expected = loadExpected(name);
    const { messages } = readRecording(new URL(`${name}.kvrec.gz`, RECORDINGS).pathname);
    expect(messages).toHaveLength(expected.messages);
    const tiers = new TierRegistry();
    const index = new MemoryIndex({ tiers });
    const ingestor = new Ingestor({
      hasher: new BlockHasher({ blockSize: expected.blockSize, hashSeed: expected.hashSeed }),
      writer: index,
      tiers,
    });
    const pipeline = new EventPipeline(ingestor, quiet);
    await playIntoPipeline(pipeline, messages);
    expect(await observedState(index, expected)).toEqual(expectedView(expected));
    expect(pipeline.counters.restarts).toBe(expected.counters.restarts);
    expect(ingestor.counters.clearedEvents).toBe(expected.counters.clearedEvents);
    expect(pipeline.counters.applied).toBe(expected.messages);
    expect([
      pipeline.counters.sequenceGaps,
      pipeline.counters.lostBatches,
      ingestor.counters.parentUnknown,
      ingestor.counters.offloadUnknown,
    ]).toEqual([0, 0, 0, 0]);
  });
});
