import { Ingestor } from '../../src/events/ingest/index.js';
import type { BlockStoredEvent, KvEvent } from '../../src/events/types.js';
import { MemoryIndex, TierRegistry } from '../../src/index/index.js';
import { BlockHasher } from '../../src/keys/index.js';
import { gc, randomKey, realisticTokens, rng, usedBytes, type Suite } from '../harness.js';

const ENDPOINTS = 8;
const BLOCKS_PER_EVENT = 16;
const BLOCK = 16;

/** Decoded BlockStored events (as the decoder yields them): chains of events, each continuing the previous one. */
function makeEvents(totalBlocks: number): { endpoint: string; events: KvEvent[] }[] {
  const random = rng(11);
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

/** Decoded BlockStored blocks applied in process: hashing, engine-key bridge, index writes. One core. */
export const ingestSuite: Suite = {
  name: 'ingest',
  description: 'decoded BlockStored/BlockRemoved applied to the in-memory index (one core)',
  run({ quick }) {
    const totalBlocks = quick ? 200_000 : 2_000_000;
    const streams = makeEvents(totalBlocks);
    const tiers = new TierRegistry();
    gc();
    const before = usedBytes();
    const index = new MemoryIndex({ tiers });
    const ingestor = new Ingestor({ hasher: new BlockHasher({ blockSize: BLOCK, hashSeed: '' }), writer: index, tiers });

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
      parameters: { totalBlocks: stored, endpoints: ENDPOINTS, blocksPerEvent: BLOCKS_PER_EVENT, blockSize: BLOCK },
      figures: {
        storedBlocksPerSecond: { value: stored / storeSeconds, unit: 'blocks/s', goal: '≥ 1000000' },
        removedBlocksPerSecond: { value: ingestor.counters.blocksRemoved / removeSeconds, unit: 'blocks/s' },
        bytesPerBlockWithBridge: { value: bytes / stats.entries, unit: 'B/(block, endpoint)' },
        indexBytesPerEntry: { value: stats.bytes / stats.entries, unit: 'B/entry' },
        engineBridgeBytesPerBlock: { value: ingestor.engineMapBytes() / stats.entries, unit: 'B/block' },
        entriesAfterStores: { value: stats.entries, unit: 'entries' },
        entriesAfterRemoves: { value: index.statsSync().entries, unit: 'entries' },
      },
    };
  },
};
