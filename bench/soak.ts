/**
 * `npm run soak -- --minutes N [--steps-per-second S] [--note TEXT]`: the service under sustained load for N minutes —
 * a simulated fleet (src/sim/publisher, in a child process: soak-fleet.ts) publishing real 3-frame ZMQ batches (chats
 * over shared system prompts, LRU evictions, CPU offload) while another child process keeps gRPC Score calls in
 * flight (soak-score-client.mjs) — sampling every second the service process's RSS, heap, event-loop delay and GC
 * pauses, and every 10 s its heap after a forced full GC. Only the service runs in the measured process.
 *
 * Leak verdict (leak-verdict.ts): least-squares slopes of heap-after-GC and RSS over the second half of the run (the
 * index is full by then), against fixed thresholds. Runs shorter than 5 minutes are "too short to judge".
 * Writes bench/results/soak.json (soak.quick.json under a minute). Exit status: 1 when anything failed (decode or
 * apply errors, lost batches, sequence gaps, gRPC errors), 2 on a leak verdict, else 0. Latencies are reported,
 * never asserted.
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { embeddedConfig, startEmbedded } from '../src/service/embedded.js';
import { machine } from './harness.js';
import { judgeLeak } from './leak-verdict.js';

const args = process.argv.slice(2);
const arg = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!(v > 0)) throw new Error(`--${name} must be a positive number`);
  return v;
};
const minutes = arg('minutes', 1);
const stepsPerSecond = arg('steps-per-second', 20);
const note = args.includes('--note') ? args[args.indexOf('--note') + 1] : undefined;
const GC_EVERY_SECONDS = 10;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('the soak needs node --expose-gc (npm run soak sets it) to measure the heap after GC');
const loadStart = loadavg();
const cpuStart = process.cpuUsage();

const embedded = await startEmbedded(embeddedConfig());
const { service, api } = embedded;

// The fleet (simulated vLLM publishers, src/sim/publisher) in its own process, as vLLM's are: see soak-fleet.ts.
const fleetProcess = fork(new URL('./soak-fleet.ts', import.meta.url), [], {
  execArgv: ['--import', 'tsx'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
type FleetMessage =
  { type: 'ready'; requests: object[] } | { type: 'done'; published: number } | { type: 'error'; message: string };
const fromFleet = (want: FleetMessage['type']) =>
  new Promise<FleetMessage>((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(new Error(`the fleet process exited (${String(code)}) before '${want}'`));
    fleetProcess.once('exit', onExit);
    fleetProcess.once('message', (m: FleetMessage) => {
      fleetProcess.off('exit', onExit);
      if (m.type === 'error') reject(new Error(`fleet: ${m.message}`));
      else if (m.type !== want) reject(new Error(`fleet: expected '${want}', got '${m.type}'`));
      else resolve(m);
    });
  });
const ready = fromFleet('ready');
fleetProcess.send({ type: 'start', endpoint: service.subscriber.lastEndpoint!, stepsPerSecond });
// Score load: prompts the fleet serves (shared system prompts), 4 calls in flight, for the whole run.
const { requests } = (await ready) as { requests: object[] };
const seconds = minutes * 60;
interface ScoreResult {
  calls: number;
  errors: number;
  firstError: string | null;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}
const scoring = new Promise<ScoreResult>((resolve, reject) => {
  const client = fork(new URL('./soak-score-client.mjs', import.meta.url), [], {
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  client.once('message', (m: { type: string; message?: string } & ScoreResult) =>
    m.type === 'result' ? resolve(m) : reject(new Error(m.message)),
  );
  client.once('error', reject);
  client.once('exit', (code) => reject(new Error(`the Score client exited (${String(code)}) before reporting`)));
  client.send({ type: 'run', address: `127.0.0.1:${api.grpcPort}`, seconds, concurrency: 4, requests });
});

// Traffic: steps of the fleet at a steady rate, for as long as the Score load runs.
const fleetDone = fromFleet('done');
fleetProcess.send({ type: 'run', seconds });

// Sampling.
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
let gcMax = 0;
let gcTotal = 0;
const gcObserver = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    // The sampler's own forced collections are not pauses of the service: left out.
    if (((e as { detail?: { flags?: number } }).detail?.flags ?? 0) & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED)
      continue;
    gcMax = Math.max(gcMax, e.duration);
    gcTotal += e.duration;
  }
});
gcObserver.observe({ entryTypes: ['gc'] });
interface Sample {
  t: number;
  rssMiB: number;
  heapMiB: number;
  /** Heap used right after a forced full GC (live objects), every GC_EVERY_SECONDS; absent in between. */
  heapAfterGcMiB?: number;
  /** Memory outside the V8 heap after that GC: ArrayBuffers (Buffers, typed arrays of the index) and other external. */
  arrayBuffersAfterGcMiB?: number;
  externalAfterGcMiB?: number;
  loopP99Ms: number;
  loopMaxMs: number;
  gcMaxMs: number;
  gcMs: number;
  indexEntries: number;
  blocksStored: number;
}
const samples: Sample[] = [];
const t0 = Date.now();
let tick = 0;
const sampler = setInterval(() => {
  let afterGc = {};
  if (++tick % GC_EVERY_SECONDS === 0) {
    gc();
    const g = process.memoryUsage();
    afterGc = {
      heapAfterGcMiB: g.heapUsed / 2 ** 20,
      arrayBuffersAfterGcMiB: g.arrayBuffers / 2 ** 20,
      externalAfterGcMiB: g.external / 2 ** 20,
    };
  }
  const m = process.memoryUsage();
  samples.push({
    t: (Date.now() - t0) / 1000,
    rssMiB: m.rss / 2 ** 20,
    heapMiB: m.heapUsed / 2 ** 20,
    ...afterGc,
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
const { published } = (await fleetDone) as { published: number };
clearInterval(sampler);
await new Promise((r) => setTimeout(r, 500));
await service.pipeline.idle();
gcObserver.disconnect();

const c = service.pipeline.counters;
const errors = {
  decodeErrors: Object.values(c.decodeErrors).reduce((a, b) => a + b, 0),
  applyErrors: c.applyErrors,
  lostBatches: c.lostBatches,
  sequenceGaps: c.sequenceGaps,
  overflowDrops: c.overflowDrops,
  grpcErrors: score.errors,
};
const leak = judgeLeak(samples, minutes);
const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;
const summary = {
  minutes,
  batchesPublished: published,
  blocksStored: service.ingestor.counters.blocksStored,
  blocksRemoved: service.ingestor.counters.blocksRemoved,
  storedBlocksPerSecond: service.ingestor.counters.blocksStored / (samples.at(-1)?.t ?? 1),
  scoreCalls: score.calls,
  scoreCallsPerSecond: score.calls / score.seconds,
  scoreP50Ms: score.p50Ms,
  scoreP99Ms: score.p99Ms,
  scoreMaxMs: score.maxMs,
  rssStartMiB: samples[0]?.rssMiB,
  rssEndMiB: samples.at(-1)?.rssMiB,
  rssSlopeMiBPerMinuteSecondHalf: leak.rss.slopeMiBPerMinute,
  heapAfterGcSlopeMiBPerMinuteSecondHalf: leak.heapAfterGc.slopeMiBPerMinute,
  indexEntriesEnd: samples.at(-1)?.indexEntries,
  eventLoopP99MsWorst: Math.max(...samples.map((s) => s.loopP99Ms)),
  eventLoopMaxMs: Math.max(...samples.map((s) => s.loopMaxMs)),
  gcPauseMaxMs: Math.max(...samples.map((s) => s.gcMaxMs)),
  errors,
  firstGrpcError: score.firstError,
  leak,
  // Other processes may share the machine: its load and this process's CPU share say how contended the run was.
  host: {
    loadAverage1mStart: loadStart[0],
    loadAverage1mEnd: loadavg()[0],
    processCpuSeconds: cpuSeconds(process.cpuUsage(cpuStart)),
    ...(note ? { note } : {}),
  },
};
const failed = Object.values(errors).some((n) => n > 0);
const leaking = leak.verdict === 'leak';
const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
const file = new URL(minutes < 1 ? 'soak.quick.json' : 'soak.json', dir);
writeFileSync(
  file,
  `${JSON.stringify({ suite: 'soak', date: new Date().toISOString(), machine: machine(), summary, samples }, null, 2)}\n`,
);
console.table(
  Object.entries(summary)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => ({ figure: k, value: Number((v as number).toPrecision(5)) })),
);
console.log(`errors: ${JSON.stringify(errors)}${failed ? '  ← FAILED' : ''}`);
console.log(`leak verdict: ${leak.verdict} — ${leak.reason}`);
console.log(`wrote ${file.pathname}`);

await embedded.stop();
process.exit(failed ? 1 : leaking ? 2 : 0);
