import { MemoryIndex, TierRegistry } from '../../index/index.js';
import { BlockHasher } from '../../keys/index.js';
import { Ingestor } from '../ingest/index.js';
import { EventPipeline } from '../pipeline.js';
import type { RecordedMessage } from './format.js';
import { playIntoPipeline } from './player.js';

/** Applies a recording to a fresh in-memory index; returns per-endpoint state and the counters. */
export async function replayInProcess(
  messages: readonly RecordedMessage[],
  format: 'vllm' | 'sglang',
  blockSize: number,
  hashSeed: string,
) {
  const tiers = new TierRegistry();
  const index = new MemoryIndex({ tiers });
  const ingestor = new Ingestor({ hasher: new BlockHasher({ blockSize, hashSeed }), writer: index, tiers });
  const log = { warn: (fields: object, message: string) => console.error(message, fields), info: () => undefined };
  const pipeline = new EventPipeline(ingestor, log, {
    format,
    stream: { queueCapacity: 1_000_000 },
    blockCounts: (id) => index.endpointEntriesSync(id),
  });
  await playIntoPipeline(pipeline, messages);
  const endpoints = pipeline.listEndpoints().map((e) => ({
    identity: e.identity,
    model: e.model,
    lastSeq: e.lastSeq,
    state: e.state,
    blocksByTier: e.blocksByTier,
    wire: e.wire,
  }));
  const result = {
    messages: messages.length,
    endpoints,
    transport: pipeline.counters,
    ingest: { ...ingestor.counters, skippedByKind: Object.fromEntries(ingestor.counters.skippedByKind) },
    index: index.statsSync(),
  };
  await pipeline.close();
  await index.close();
  return result;
}
