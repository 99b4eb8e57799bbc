import { Ingestor } from '../../src/events/ingest/index.js';
import type { BlockStoredEvent, KvEvent } from '../../src/events/types.js';
import { MemoryIndex, TierRegistry } from '../../src/index/index.js';
import { BlockHasher } from '../../src/keys/index.js';
import { gc, randomKey, realisticTokens, rng, usedBytes, type Suite } from '../harness.js';

const ENDPOINTS = 8;
const BLOCKS_PER_EVENT = 16;
const BLOCK = 16;

/** Decoded BlockStored events (as the decoder yields them): chains of events, each continuing the previous one. */
function makeEvents(totalBlocks: number, seed = 11): { endpoint: string; events: KvEvent[] }[] {
  const random = rng(seed);
  // Token arrays are shared between events (their keys still differ: each continues a different parent), so the
  // benchmark does not keep hundreds of MB of input alive for the garbage collector to mark. Chain starts get
  // their own tokens: with a nil parent, equal tokens would mean equal keys.
  const pool = Array.from({ length: 256 }, () => realisticTokens(BLOCKS_PER_EVENT * BLOCK, random));
  const perEndpoint = Math.ceil(totalBlocks / ENDPOINTS / BLOCKS_PER_EVENT);
  const out: { endpoint: string; events: KvEvent[] }[] = [];
  for (let e = 0; e < ENDPOINTS; e++) {
    const events: KvEvent[] = [];
    let parent: bigint | null = null;
    for (let i = 0; i < perEndpoint; i++) {
      // A new conversation every 32 events (512 blocks), else continue the chain.
      if (i % 32 === 0) parent = null;
      const hashes = new BigUint64Array(BLOCKS_PER_EVENT);
      for (let b = 0; b < BLOCKS_PER_EVENT; b++) hashes[b] = randomKey(random);
      const ev: BlockStoredEvent = {
        type: 'BlockStored',
        blockHashes: hashes,
        parentBlockHash: parent,
        tokenIds: parent === null ? realisticTokens(BLOCKS_PER_EVENT * BLOCK, random) : pool[i % pool.length],
        blockSize: BLOCK,
        loraId: null,
        medium: 'GPU',
        loraName: null,
        extraKeys: null,
        groupIdx: 0,
        kvCacheSpecKind: 'full_attention',
        kvCacheSpecSlidingWindow: null,
        cacheSalt: null,
      };
      events.push(ev);
      parent = hashes[BLOCKS_PER_EVENT - 1];
    }
    out.push({ endpoint: `10.0.0.${e + 1}:8000`, events });
  }
  return out;
}

/** An empty in-memory index and an Ingestor writing to it, with canonical block size `canonical`. */
function freshIngest(canonical: number) {
  const tiers = new TierRegistry();
  const index = new MemoryIndex({ tiers });
  const ingestor = new Ingestor({
    hasher: new BlockHasher({ blockSize: canonical, hashSeed: '' }),
    writer: index,
    tiers,
  });
  return { index, ingestor };
}

/** Applies the streams to a fresh index with canonical block size `canonical` (engine blocks are BLOCK tokens). */
function measure(totalBlocks: number, canonical: number) {
  const streams = makeEvents(totalBlocks);
  gc();
  const before = usedBytes();
  const { index, ingestor } = freshIngest(canonical);

  // Interleave endpoints one event at a time, as live traffic would.
  const t0 = process.hrtime.bigint();
  const perEndpoint = streams[0].events.length;
  for (let i = 0; i < perEndpoint; i++) {
    for (const s of streams) ingestor.applySync(s.endpoint, 'model', [s.events[i]]);
  }
  const storeSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const stored = ingestor.counters.blocksStored;
  gc();
  const bytes = usedBytes() - before;
  const stats = index.statsSync();

  const t1 = process.hrtime.bigint();
  for (const s of streams) {
    const removes: KvEvent[] = s.events.map((ev) => ({
      type: 'BlockRemoved',
      blockHashes: (ev as BlockStoredEvent).blockHashes,
      medium: 'GPU',
      groupIdx: 0,
    }));
    ingestor.applySync(s.endpoint, 'model', removes);
  }
  const removeSeconds = Number(process.hrtime.bigint() - t1) / 1e9;
  return {
    stored,
    storeSeconds,
    removeSeconds,
    bytes,
    stats,
    ingestor,
    entriesAfterRemoves: index.statsSync().entries,
  };
}

/**
 * Production's steady state: the index and the bridge already hold `residentBlocks` (stored untimed), and each further
 * store event of an endpoint comes with the removal of that endpoint's oldest held event (the engine evicting as many
 * blocks as it stores), so the tables stay at their size. Times `steadyBlocks` stored blocks and their
 * evictions together; returns numbers only, so that nothing it built outlives it.
 */
function measureSteady(residentBlocks: number, steadyBlocks: number) {
  const resident = Math.round(residentBlocks / ENDPOINTS / BLOCKS_PER_EVENT);
  const steady = Math.round(steadyBlocks / ENDPOINTS / BLOCKS_PER_EVENT);
  const streams = makeEvents((resident + steady) * ENDPOINTS * BLOCKS_PER_EVENT, 12);
  const { index, ingestor } = freshIngest(BLOCK);
  const total = resident + steady;
  for (let i = 0; i < resident; i++) {
    for (const s of streams) ingestor.applySync(s.endpoint, 'model', [s.events[i]]);
  }
  const storedBefore = ingestor.counters.blocksStored;
  const removedBefore = ingestor.counters.blocksRemoved;
  gc();
  const t0 = process.hrtime.bigint();
  for (let i = resident; i < total; i++) {
    for (const s of streams) {
      const oldest = s.events[i - resident] as BlockStoredEvent;
      ingestor.applySync(s.endpoint, 'model', [
        s.events[i],
        { type: 'BlockRemoved', blockHashes: oldest.blockHashes, medium: 'GPU', groupIdx: 0 },
      ]);
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    stored: ingestor.counters.blocksStored - storedBefore,
    removed: ingestor.counters.blocksRemoved - removedBefore,
    seconds,
    resident: resident * ENDPOINTS * BLOCKS_PER_EVENT,
    entries: index.statsSync().entries,
  };
}

/** Decoded BlockStored blocks applied in process: hashing, engine-key bridge, index writes. One core. */
export const ingestSuite: Suite = {
  name: 'ingest',
  description: 'decoded BlockStored/BlockRemoved applied to the in-memory index (one core)',
  run({ quick }) {
    const totalBlocks = quick ? 200_000 : 2_000_000;
    const m = measure(totalBlocks, BLOCK);
    // vLLM's 16-token engine blocks under llm-d's 64-token canonical blocks: every canonical block is a span of 4.
    const s = measure(totalBlocks, 64);
    const steadyResident = quick ? 100_000 : 1_000_000;
    const steadySteps = quick ? 100_000 : 1_000_000;
    const st = measureSteady(steadyResident, steadySteps);
    return {
      parameters: {
        totalBlocks: m.stored,
        endpoints: ENDPOINTS,
        blocksPerEvent: BLOCKS_PER_EVENT,
        blockSize: BLOCK,
        spanCanonicalBlockSize: 64,
        steadyResidentBlocks: st.resident,
        steadyStoredBlocks: st.stored,
        steadyRemovedBlocks: st.removed,
        steadyEviction: "each store event removes its endpoint's oldest held event (same size)",
      },
      figures: {
        storedBlocksPerSecond: { value: m.stored / m.storeSeconds, unit: 'blocks/s', goal: '≥ 1000000' },
        removedBlocksPerSecond: { value: m.ingestor.counters.blocksRemoved / m.removeSeconds, unit: 'blocks/s' },
        bytesPerBlockWithBridge: { value: m.bytes / m.stats.entries, unit: 'B/(block, endpoint)' },
        indexBytesPerEntry: { value: m.stats.bytes / m.stats.entries, unit: 'B/entry' },
        engineBridgeBytesPerBlock: { value: m.ingestor.engineMapBytes() / m.stats.entries, unit: 'B/block' },
        entriesAfterStores: { value: m.stats.entries, unit: 'entries' },
        entriesAfterRemoves: { value: m.entriesAfterRemoves, unit: 'entries' },
        spans16of64StoredBlocksPerSecond: { value: s.stored / s.storeSeconds, unit: 'engine blocks/s' },
        spans16of64RemovedBlocksPerSecond: {
          value: s.ingestor.counters.blocksRemoved / s.removeSeconds,
          unit: 'engine blocks/s',
        },
        spans16of64BytesPerCanonicalBlock: { value: s.bytes / s.stats.entries, unit: 'B/(canonical block, endpoint)' },
        spans16of64BridgeBytesPerCanonicalBlock: {
          value: s.ingestor.engineMapBytes() / s.stats.entries,
          unit: 'B/(canonical block, endpoint)',
        },
        spans16of64EntriesAfterStores: { value: s.stats.entries, unit: 'entries' },
        spans16of64EntriesAfterRemoves: { value: s.entriesAfterRemoves, unit: 'entries' },
        // Tables already at size: what an indexer that has been running sustains (stores plus as many evictions).
        steadyStoredBlocksPerSecond: { value: st.stored / st.seconds, unit: 'blocks/s (each with one eviction)' },
        steadyEntries: { value: st.entries, unit: 'entries' },
      },
    };
  },
};
