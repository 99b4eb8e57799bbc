import { describe, expect, it } from 'vitest';
import { replayInProcess } from '../../../src/events/recording/replay-in-process.js';
import { readRecording } from '../../../src/events/recording/format.js';
import { VLLM_ENDPOINT } from '../../../scripts/make-publisher-recordings.js';

/** `kv-indexer replay FILE --in-process` shows each endpoint's placement (locality, ownership) and refused events. */
describe('recordings expose locality and ownership', () => {
  it('vllm-storage-locality.kvrec replayed in process', async () => {
    const { header, messages } = readRecording(
      new URL('../../../fixtures/recordings/vllm-storage-locality.kvrec', import.meta.url).pathname,
    );
    const state = await replayInProcess(messages, header.format, 16, '');
    expect(state.endpoints).toHaveLength(1);
    expect(state.endpoints[0]).toMatchObject({
      identity: VLLM_ENDPOINT,
      lastSeq: 2n,
      blocksByTier: { STORAGE_REMOTE: 2, STORAGE: 1 },
      wire: {
        storedBlocksByLocality: { unspecified: 2, REMOTE: 2, LOCAL: 1 },
        storedBlocksByOwnership: { 'fs-shared': 2, 'fs-local': 1 },
        skippedEvents: { unknown_locality: 1 },
      },
    });
    expect(state.transport.decodeErrors).toEqual({ unknown_locality: 1 });
  });
});
