/**
 * `npm run soak -- --minutes N [--steps-per-second S]`: the service under sustained load for N minutes — a simulated
 * fleet publishing real 3-frame ZMQ batches (chats over shared system prompts, LRU evictions, CPU offload) while a
 * worker thread keeps gRPC Score calls in flight — sampling every second RSS, heap, event-loop delay and GC pauses.
 * Writes bench/results/soak.json (soak.quick.json under a minute) with the samples, the RSS slope over the second
 * half (a leak shows as a steady climb once the index is full) and every error count. Exits 1 when anything failed
 * (decode or apply errors, lost batches, sequence gaps, gRPC errors); timings are reported, never asserted.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { startApi } from '../src/cli/start-api.js';
import { startService } from '../src/cli/serve.js';
import { SimFleet } from '../src/events/sim/fleet.js';
import { SimPublisher } from '../src/events/sim/publisher.js';
import { ChatWorkload } from '../src/events/sim/workload.js';
import { ConfigSchema, createLogger } from '../src/ops/index.js';
import { machine } from './harness.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!(v > 0)) throw new Error(`--${name} must be a positive number`);
  return v;
};
const minutes = arg('minutes', 1);
const stepsPerSecond = arg('steps-per-second', 20);
const MODEL = 'Qwen/Qwen3-8B';
const ENDPOINTS = 4;

const config = ConfigSchema.parse({
  zmq: { addresses: ['tcp://127.0.0.1:*'] },
  api: { grpcAddress: '127.0.0.1:0' },
  metrics: { host: '127.0.0.1', port: 0 },
  log: { level: 'silent', statsIntervalSeconds: 0 },
});
const log = createLogger('silent');
const service = await startService(config, log);
const api = await startApi(service, config, log);

// The fleet: bounded GPU pools (so evictions flow), CPU offload on half of the endpoints.
const fleet = new SimFleet(
  Array.from({ length: ENDPOINTS }, (_, e) => ({
    endpoint: `10.0.0.${e + 1}:8000`,
    model: MODEL,
    gpuBlocks: 1_024,
    cpuBlocks: e % 2 === 0 ? 512 : 0,
    style: { encoding: e % 2 === 0 ? ('map' as const) : ('array' as const), hashes: e % 3 === 0 ? ('bytes' as const) : ('int' as const) },
  })),
);
const workload = new ChatWorkload(fleet, {
  seed: 7,
  systemPrompts: 6,
  systemPromptTokens: [256, 1024],
  newChatShare: 0.3,
  loraShare: 0.1,
  loraName: 'adapter',
  imageShare: 0.05,
  imageTokens: [64, 256],
  openChats: 48,
});
const publishers = new Map<string, SimPublisher>();
for (const identity of fleet.identities()) {
  const pub = new SimPublisher({ topic: `kv@${identity}@${MODEL}`, endpoint: service.subscriber.lastEndpoint! });
  await pub.start();
  publishers.set(identity, pub);
}
await new Promise((r) => setTimeout(r, 500)); // let the subscriptions propagate before the first batch

// Score load: prompts the fleet serves (shared system prompts), 4 calls in flight, for the whole run.
const candidates = fleet.identities();
const requests = Array.from({ length: 32 }, () => {
  const chat = workload.run(1)[0];
  return { model: MODEL, tokens: { tokenIds: Array.from(chat.request.tokens) }, candidates };
});
const seconds = minutes * 60;
const scoring = new Promise<{ latencies: number[]; errors: number; elapsed: number }>((resolve, reject) => {
  const worker = new Worker(new URL('./suites/grpc-load-client.mjs', import.meta.url), {
    workerData: { address: `127.0.0.1:${api.grpcPort}`, seconds, concurrency: 4, requests },
  });
  worker.once('message', resolve);
  worker.once('error', reject);
});

// Traffic: steps of the fleet at a steady rate.
let published = 0;
const traffic = setInterval(() => {
  workload.run(ENDPOINTS);
  for (const b of fleet.step()) {
    void publishers.get(b.identity)!.publish(b.payload);
    published++;
  }
}, 1000 / stepsPerSecond);

// Sampling.
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
let gcMax = 0;
let gcTotal = 0;
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMax = Math.max(gcMax, e.duration);
    gcTotal += e.duration;
  }
});
gcObserver.observe({ entryTypes: ['gc'] });
interface Sample {
  t: number;
  rssMiB: number;
  heapMiB: number;
  loopP99Ms: number;
  loopMaxMs: number;
  gcMaxMs: number;
  gcMs: number;
  indexEntries: number;
  blocksStored: number;
}
const samples: Sample[] = [];
const t0 = Date.now();
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  samples.push({
    t: (Date.now() - t0) / 1000,
    rssMiB: m.rss / 2 ** 20,
    heapMiB: m.heapUsed / 2 ** 20,
    loopP99Ms: loop.percentile(99) / 1e6,
    loopMaxMs: loop.max / 1e6,
    gcMaxMs: gcMax,
    gcMs: gcTotal,
    indexEntries: 'statsSync' in service.index ? service.index.statsSync().entries : 0,
    blocksStored: service.ingestor.counters.blocksStored,
  });
  loop.reset();
  gcMax = 0;
  gcTotal = 0;
}, 1000);

const score = await scoring;
clearInterval(traffic);
clearInterval(sampler);
await new Promise((r) => setTimeout(r, 500));
await service.pipeline.idle();
gcObserver.disconnect();

/** Least-squares slope of RSS over the second half of the run, in MiB per minute. */
function rssSlope(points: Sample[]): number {
  const half = points.slice(Math.floor(points.length / 2));
  if (half.length < 3) return 0;
  const mx = half.reduce((a, p) => a + p.t, 0) / half.length;
  const my = half.reduce((a, p) => a + p.rssMiB, 0) / half.length;
  const num = half.reduce((a, p) => a + (p.t - mx) * (p.rssMiB - my), 0);
  const den = half.reduce((a, p) => a + (p.t - mx) ** 2, 0);
  return den === 0 ? 0 : (num / den) * 60;
}
const c = service.pipeline.counters;
const sorted = [...score.latencies].sort((a, b) => a - b);
const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const errors = {
  decodeErrors: Object.values(c.decodeErrors).reduce((a, b) => a + b, 0),
  applyErrors: c.applyErrors,
  lostBatches: c.lostBatches,
  sequenceGaps: c.sequenceGaps,
  overflowDrops: c.overflowDrops,
  grpcErrors: score.errors,
};
const summary = {
  minutes,
  batchesPublished: published,
  blocksStored: service.ingestor.counters.blocksStored,
  blocksRemoved: service.ingestor.counters.blocksRemoved,
  storedBlocksPerSecond: service.ingestor.counters.blocksStored / (samples.at(-1)?.t ?? 1),
  scoreCalls: score.latencies.length,
  scoreP50Ms: q(50),
  scoreP99Ms: q(99),
  rssStartMiB: samples[0]?.rssMiB,
  rssEndMiB: samples.at(-1)?.rssMiB,
  rssSlopeMiBPerMinuteSecondHalf: rssSlope(samples),
  eventLoopP99MsWorst: Math.max(...samples.map((s) => s.loopP99Ms)),
  eventLoopMaxMs: Math.max(...samples.map((s) => s.loopMaxMs)),
  gcPauseMaxMs: Math.max(...samples.map((s) => s.gcMaxMs)),
  errors,
};
const failed = Object.values(errors).some((n) => n > 0);
const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
const file = new URL(minutes < 1 ? 'soak.quick.json' : 'soak.json', dir);
writeFileSync(file, `${JSON.stringify({ suite: 'soak', date: new Date().toISOString(), machine: machine(), summary, samples }, null, 2)}\n`);
console.table(Object.entries(summary).filter(([, v]) => typeof v === 'number').map(([k, v]) => ({ figure: k, value: Number((v as number).toPrecision(5)) })));
console.log(`errors: ${JSON.stringify(errors)}${failed ? '  ← FAILED' : ''}`);
console.log(`wrote ${file.pathname}`);

for (const pub of publishers.values()) await pub.close();
await api.stop();
await service.stop();
process.exit(failed ? 1 : 0);
