import { Worker } from 'node:worker_threads';
import { EventPipeline, EventTransport, Ingestor } from '../../src/events/index.js';
import { SimFleet } from '../../src/sim/publisher/fleet.js';
import { seqBytes } from '../../src/sim/publisher/publisher.js';
import { ChatWorkload } from '../../src/sim/publisher/workload.js';
import { MemoryIndex, TierRegistry } from '../../src/index/index.js';
import { BlockHasher } from '../../src/keys/index.js';
import { gc, type Suite } from '../harness.js';

const MODEL = 'Qwen/Qwen3-8B';
const quiet = { warn: () => undefined, info: () => undefined, error: () => undefined };

/** A recording-like stream from the simulator: long chats on several endpoints, per-step batches. */
function traffic(endpoints: number, storedBlocks: number, seed: number, requestsPerStep = 2) {
  const fleet = new SimFleet(
    Array.from({ length: endpoints }, (_, e) => ({
      endpoint: `10.0.0.${e + 1}:8000`,
      model: MODEL,
      gpuBlocks: 8_192,
      cpuBlocks: e % 2 === 0 ? 4_096 : 0,
      style: {
        encoding: e % 2 === 0 ? ('array' as const) : ('map' as const),
        hashes: e % 3 === 0 ? ('bytes' as const) : ('int' as const),
      },
    })),
  );
  const workload = new ChatWorkload(fleet, {
    seed,
    systemPrompts: 8,
    systemPromptTokens: [256, 1024],
    newChatShare: 0.5,
    loraShare: 0.1,
    loraName: 'adapter',
    imageShare: 0.05,
    imageTokens: [64, 256],
    openChats: 64,
  });
  const frames: Buffer[][] = [];
  let blocks = 0;
  while (blocks < storedBlocks) {
    workload.run(endpoints * requestsPerStep);
    for (const b of fleet.step()) {
      for (const ev of b.events) if (ev.type === 'BlockStored') blocks += ev.hashes.length;
      frames.push([Buffer.from(b.topic), seqBytes(b.seq), Buffer.from(b.payload)]);
    }
  }
  return { frames, blocks };
}

function setup() {
  const tiers = new TierRegistry();
  const index = new MemoryIndex({ tiers });
  const ingestor = new Ingestor({ hasher: new BlockHasher({ blockSize: 16, hashSeed: '' }), writer: index, tiers });
  return { index, ingestor };
}

function peer(data: { pubAddress: string | null; frames: Buffer[][]; replay: boolean }) {
  const worker = new Worker(new URL('./transport-peer.mjs', import.meta.url), { workerData: data });
  const next = (type: string) =>
    new Promise<{ replayAddress?: string | null; count?: number }>((resolve, reject) => {
      const onMessage = (m: { type: string; replayAddress?: string | null; count?: number }) => {
        if (m.type !== type) return;
        worker.off('message', onMessage);
        resolve(m);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
  return { worker, next };
}

const until = async (done: () => boolean, timeoutMs = 120_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('transport bench: timed out');
    await new Promise((r) => setTimeout(r, 2));
  }
};

/**
 * End to end over real ZMQ: a publisher thread → SUB → decode → per-endpoint streams → ingest → index. Stored
 * blocks/s is the goal figure; event blocks/s also counts the removals (evictions) the same stream carries.
 */
async function endToEnd(quick: boolean, requestsPerStep: number) {
  const { frames, blocks } = traffic(8, quick ? 60_000 : 600_000, 21, requestsPerStep);
  const { index, ingestor } = setup();
  const pipeline = new EventPipeline(ingestor, quiet, { stream: { queueCapacity: 100_000 } });
  const transport = new EventTransport(
    pipeline,
    { bind: ['tcp://127.0.0.1:*'], endpoints: [], receiveHighWaterMark: 0 },
    quiet,
  );
  await transport.start();
  const { worker, next } = peer({ pubAddress: transport.bindSubscriber.lastEndpoint, frames, replay: false });
  worker.postMessage({ type: 'start' });
  await next('ready');
  const probe = [Buffer.from('kv@127.0.0.9:1@probe'), seqBytes(0), Buffer.from([0x93, 0, 0x90, 0xc0])];
  while (!pipeline.endpoints().has('127.0.0.9:1')) {
    worker.postMessage({ type: 'probe', frames: probe });
    await next('probed');
    await new Promise((r) => setTimeout(r, 10));
  }
  gc();
  const stored0 = ingestor.counters.blocksStored;
  const applied0 = pipeline.counters.applied;
  const t0 = performance.now();
  worker.postMessage({ type: 'go' });
  await until(() => pipeline.counters.applied - applied0 >= frames.length);
  await pipeline.idle();
  const seconds = (performance.now() - t0) / 1000;
  const stored = ingestor.counters.blocksStored - stored0;
  const removed = ingestor.counters.blocksRemoved;
  const result = {
    storedBlocksPerSecond: stored / seconds,
    eventBlocksPerSecond: (stored + removed) / seconds,
    removed,
    batchesPerSecond: frames.length / seconds,
    batches: frames.length,
    blocks,
    stored,
    gaps: pipeline.counters.sequenceGaps,
  };
  worker.postMessage({ type: 'stop' });
  await transport.stop();
  await index.close();
  return result;
}

/** Gap repair: the stream is at seq 99, the next live batch is seq 1100; replay fetches and applies 1,000 batches. */
async function replayRecovery() {
  const { frames: all } = traffic(1, 200_000, 5);
  const frames = all.slice(0, 1_101);
  if (frames.length < 1_101) throw new Error('transport bench: not enough batches for the replay measure');
  const { index, ingestor } = setup();
  const pipeline = new EventPipeline(ingestor, quiet, {});
  const { worker, next } = peer({ pubAddress: null, frames, replay: true });
  worker.postMessage({ type: 'start' });
  const { replayAddress } = await next('ready');
  const origin = { source: 'bench', replay: replayAddress! };
  for (let i = 0; i < 100; i++) pipeline.handle(frames[i], origin);
  await pipeline.idle();
  const stored0 = ingestor.counters.blocksStored;
  gc();
  const t0 = performance.now();
  pipeline.handle(frames[1_100], origin);
  await pipeline.idle();
  const ms = performance.now() - t0;
  // Normally 1,001 (the hole plus the live batch that revealed it); reported rather than asserted, so a run under load
  // that replays differently is visible in the results instead of aborting the benchmark.
  const replayed = pipeline.counters.replayedBatches;
  const blocks = ingestor.counters.blocksStored - stored0;
  worker.postMessage({ type: 'stop' });
  await index.close();
  return { ms, blocks, replayed };
}

export const transportSuite: Suite = {
  name: 'transport',
  description:
    'end to end over real ZMQ (publisher thread → SUB → decode → streams → ingest → in-memory index), and replay recovery',
  async run({ quick }) {
    const e2e = await endToEnd(quick, 2);
    const replay = await replayRecovery();
    return {
      parameters: {
        endpoints: 8,
        requestsPerEndpointStep: 2,
        batches: e2e.batches,
        storedBlocks: e2e.stored,
        removedBlocks: e2e.removed,
        gapsSeen: e2e.gaps,
        replayGapBatches: 1_000,
        replayedBatches: replay.replayed,
        replayedBlocks: replay.blocks,
      },
      figures: {
        endToEndStoredBlocksPerSecond: { value: e2e.storedBlocksPerSecond, unit: 'blocks/s', goal: '≥ 300000' },
        endToEndEventBlocksPerSecond: { value: e2e.eventBlocksPerSecond, unit: 'blocks/s' },
        endToEndBatchesPerSecond: { value: e2e.batchesPerSecond, unit: 'batches/s' },
        replayRecovery1000Batches: { value: replay.ms, unit: 'ms' },
        replayRecoveryBlocksPerSecond: { value: replay.blocks / (replay.ms / 1000), unit: 'blocks/s' },
      },
    };
  },
};
