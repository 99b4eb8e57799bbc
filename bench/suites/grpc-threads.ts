import { createServer } from 'node:net';
import { createLogger, threadSchedstat } from '../../src/ops/index.js';
import { embeddedConfig, startEmbedded } from '../../src/service/embedded.js';
import { startThreaded } from '../../src/service/start-threaded.js';
import { grpcClient } from '../../test/support/grpc-client.js';
import { gc, realisticTokens, rng, type Figure, type Suite } from '../harness.js';
import { CONNECTIONS, LoadClient } from '../support/load-client.js';
import { BENCH_CANDIDATES, BENCH_PROMPT_TOKENS } from '../support/resident-prompts.js';
import { ZmqFeeder, type FeederCount } from '../support/zmq-feeder.js';
import {
  CONCURRENCY,
  cpuPerCall,
  INGEST_BLOCKS_PER_SECOND,
  LOWER_RATE,
  noopCeiling,
  noopLeanCeiling,
  OFFERED_RATE,
  phases,
  RESIDENT_BLOCKS,
  serialise,
} from './grpc.js';

/** `single` and `thread` on the lean HTTP/2 server (api.leanHttp2, the default); `threadNode` on node:http2 + grpc-js. */
type Shape = 'single' | 'thread' | 'threadNode';
const SHAPES: Shape[] = ['single', 'thread', 'threadNode'];

export const PROMPTS = 64;
const BLOCKS_PER_PROMPT = BENCH_PROMPT_TOKENS / 16;
/** Each resident prompt is held by 4 of the 16 candidates: (p + 4k) % 16. */
const HOLDERS = 4;
/** The discarded first round (see run()): a small ring, so that it costs seconds, not a full fill. */
const WARMUP_RESIDENT_BLOCKS = 16 * BENCH_CANDIDATES.length * 64;

/**
 * gRPC Score (tokens in, 16 candidates) with everything fed over ZMQ, as vLLM feeds it, in two shapes of the same
 * service, same run: `single` (one thread: ZMQ, ingest, index, gRPC and the Score work on one event loop; Score on the
 * lean path) and `thread` (api.indexThread: the main thread terminates HTTP/2 only; ZMQ, ingest, index and the Score
 * work run in the index thread, calls handed over as bytes). A child process publishes the resident prompts and a
 * 100k blocks/s background over a PUB socket to the service's bound SUB socket; the grpc suite's load client and
 * phases measure Score; the lean-path no-op handler of the same run gives the ceiling.
 */
export const grpcThreadsSuite: Suite = {
  name: 'grpc-threads',
  description:
    'gRPC Score (tokens in, 16 candidates) single-thread vs api.indexThread, all data over ZMQ from a feeder process at 100k blocks/s',
  async run({ quick }) {
    const seconds = quick ? 2 : 10;
    const data = scoreWorkload();
    const { requests } = data;
    const client = await LoadClient.start();
    const results = {} as Record<Shape, ShapeResult>;
    let noop: Awaited<ReturnType<typeof noopCeiling>>;
    let noopNode: Awaited<ReturnType<typeof noopCeiling>>;
    try {
      // The first service measured in a process runs slower (grpc.ts): a short discarded round of the single shape
      // first (small ring, 1 s phases), so that the two shapes are compared on equal terms.
      await measureShape(client, 'single', 1, data, WARMUP_RESIDENT_BLOCKS, WARMUP_RESIDENT_BLOCKS);
      gc();
      // GRPC_THREADS_BENCH_THREAD_FIRST=1 measures the thread shape first (a check of the order).
      const order: Shape[] = process.env.GRPC_THREADS_BENCH_THREAD_FIRST ? ['thread', 'single', 'threadNode'] : SHAPES;
      for (const shape of order) {
        results[shape] = await measureShape(client, shape, seconds, data, RESIDENT_BLOCKS, quick ? 2 ** 17 : 2 ** 20);
        // The service's heap (a 1M-block index) is garbage now: collected before the next server is measured.
        gc();
      }
      noop = await noopLeanCeiling(client, seconds, requests);
      noopNode = await noopCeiling(client, seconds, requests, true);
    } finally {
      client.exit();
    }
    const figures: Record<string, Figure> = {};
    for (const shape of SHAPES) Object.assign(figures, shapeFigures(shape, results[shape]));
    Object.assign(figures, {
      noopClosedRequestsPerSecond: { value: noop.closed.requestsPerSecond, unit: 'req/s' },
      noopClosedServerCpuPerCall: { value: cpuPerCall(noop.closed), unit: 'µs' },
      noopClosedP99: { value: noop.closed.p99, unit: 'ms' },
      noopOpenP50: { value: noop.open.p50, unit: 'ms' },
      noopOpenP99: { value: noop.open.p99, unit: 'ms' },
      noopOpenP999: { value: noop.open.p999, unit: 'ms' },
      noopOpenMainGcMaxPause: { value: noop.open.serverGcMaxMs ?? NaN, unit: 'ms' },
      noopOpenMainLoopDelayP99: { value: noop.open.serverLoopDelayP99Ms ?? NaN, unit: 'ms' },
      noopLowerRateP99: { value: noop.openLower.p99, unit: 'ms' },
      noopErrors: { value: noop.closed.errors + noop.open.errors + noop.openLower.errors, unit: 'calls' },
      noopNodeClosedRequestsPerSecond: { value: noopNode.closed.requestsPerSecond, unit: 'req/s' },
      noopNodeClosedServerCpuPerCall: { value: cpuPerCall(noopNode.closed), unit: 'µs' },
      noopNodeOpenP99: { value: noopNode.open.p99, unit: 'ms' },
      noopNodeOpenP999: { value: noopNode.open.p999, unit: 'ms' },
      noopNodeErrors: {
        value: noopNode.closed.errors + noopNode.open.errors + noopNode.openLower.errors,
        unit: 'calls',
      },
      // Issue 16's closed-loop goal: the service at ≥ 0.8 × a no-op handler's throughput, both on the lean server.
      threadClosedVsNoop: {
        value: results.thread.phases.closed.requestsPerSecond / noop.closed.requestsPerSecond,
        unit: '×',
        goal: '≥ 0.8',
      },
      singleClosedVsNoop: {
        value: results.single.phases.closed.requestsPerSecond / noop.closed.requestsPerSecond,
        unit: '×',
        goal: '≥ 0.8',
      },
      threadNodeClosedVsNoopNode: {
        value: results.threadNode.phases.closed.requestsPerSecond / noopNode.closed.requestsPerSecond,
        unit: '×',
      },
      threadClosedVsThreadNode: {
        value: results.thread.phases.closed.requestsPerSecond / results.threadNode.phases.closed.requestsPerSecond,
        unit: '×',
      },
      threadClosedVsSingle: {
        value: results.thread.phases.closed.requestsPerSecond / results.single.phases.closed.requestsPerSecond,
        unit: '×',
      },
    } satisfies Record<string, Figure>);
    return {
      parameters: {
        seconds,
        shapes: {
          single:
            'startEmbedded, api.leanHttp2 (default): ZMQ, ingest, index, HTTP/2 (lean server) and the Score work on one event loop',
          thread:
            'startThreaded, api.indexThread + api.leanHttp2: the main thread terminates HTTP/2 (lean server); ZMQ, ingest, index and Score work in the index thread',
          threadNode:
            'startThreaded, api.indexThread with api.leanHttp2 false: HTTP/2 on node:http2 + grpc-js (Score on its fast path), as before the lean server',
        },
        ceilings:
          'noop*: a no-op Score behind the lean server (the ceiling of the lean shapes); noopNode*: behind node:http2 + grpc-js with api.fastScore',
        order: process.env.GRPC_THREADS_BENCH_THREAD_FIRST
          ? 'thread, single, threadNode'
          : 'single, thread, threadNode',
        discardedFirstRound: `single shape, ${WARMUP_RESIDENT_BLOCKS} background blocks, 1 s phases`,
        candidates: BENCH_CANDIDATES.length,
        promptTokens: BENCH_PROMPT_TOKENS,
        residentPrompts: `${PROMPTS} prompts, each one BlockStored of ${BLOCKS_PER_PROMPT} blocks (16 tokens) on ${HOLDERS} of the candidates, published over ZMQ before the phases`,
        feed: 'child process (bench/support/zmq-feeder.mjs): PUB connected to the service’s bound SUB (tcp, loopback, port from the OS); topic kv@<endpoint>@model, sequence +1 per message per topic; batches [ts, events, nil], array-form events, uint64 hashes; pre-encoded bytes',
        backgroundBlocksPerSecond: INGEST_BLOCKS_PER_SECOND,
        backgroundResidentBlocks: RESIDENT_BLOCKS,
        background:
          'as the grpc suite: BlockStored events of 16 blocks (random engine hashes, token ids from a pool of 64 × 256), each evicting the oldest 16 of its endpoint (BlockRemoved) once the resident blocks are held; every 10 ms the stores due, one message per endpoint',
        correctness:
          'before and after the phases, every resident prompt scored through a grpc-js client: exactly its 4 holders at 64 matched blocks, the 12 others at 0 (the suite fails otherwise); the load client checks every response by size; after the feed stops, every published block must be counted stored',
        client:
          'the grpc suite’s load client: child process speaking HTTP/2 itself (pre-built frames, responses checked by size)',
        connections: CONNECTIONS,
        closedLoopConcurrency: CONCURRENCY,
        openLoopOfferedRate: OFFERED_RATE,
        openLoopLowerRate: LOWER_RATE,
        openLoopLatencyFrom: 'scheduled send time',
        serverCpu:
          'process.cpuUsage of this process: every thread (main, index thread, libuv, ZMQ I/O threads), not the feeder or the client',
        gcAndLoopDelay:
          'main thread only (PerformanceObserver, monitorEventLoopDelay), open loop at 5,000/s; the index thread’s own GC and loop are not observed here',
        ingestedBlocksPerSecond:
          'GetStats blocksStored delta (gRPC) over the closed and both open phases (and h2load’s, when installed)',
        rss: 'this process’s resident memory at the end of the phases: the service (both threads in the thread shape) and the bench’s own',
        ceiling: 'the grpc suite’s no-op Score handler on the lean path (api.fastScore), same client, same run',
        ingestCapacity:
          'paced feed stopped; a burst of blocks (stores with their evictions) published as fast as the feeder can, alone, then while Score runs open loop at 5,000/s, then alone again; blocks over the time from the first send to the last block counted stored (GetStats every 5 ms); alone = mean of the two quiet bursts',
        ingestThreadLoad:
          'CPU and run-queue wait (Linux schedstat) of the ingesting thread per second of a burst: the index thread’s counters on /metrics, or this process’s main thread (the service’s loop) for the single shape',
      },
      figures,
    };
  },
};

/**
 * The resident prompts, the background token pool and the Score requests (tokens in, 16 candidates): the grpc suite's
 * draws, in its order (resident-prompts.ts, then its background token pool), so the same tokens (grpc-processes too).
 */
export function scoreWorkload(): { prompts: number[][]; tokenPool: number[][]; requests: object[] } {
  const random = rng(5);
  const prompts = Array.from({ length: PROMPTS }, () => Array.from(realisticTokens(BENCH_PROMPT_TOKENS, random)));
  const tokenPool = Array.from({ length: 64 }, () => Array.from(realisticTokens(256, random)));
  const requests = prompts.map((tokens) => ({
    model: 'model',
    tokens: { tokenIds: tokens },
    candidates: BENCH_CANDIDATES,
  }));
  return { prompts, tokenPool, requests };
}

interface ShapeResult {
  phases: Awaited<ReturnType<typeof phases>>;
  feederBlocksPerSecond: number;
  feederCpuCores: number;
  feederTimerLateMaxMs: number;
  rssBytes: number;
  fillSeconds: number;
  /** Blocks published but not yet counted stored when the last phase ended (queued in ZMQ or the ingest). */
  lagBlocksEndOfPhases: number;
  transport: { gaps: number; dropped: number; lost: number; decodeErrors: number };
  capacity: IngestCapacity;
}

export interface IngestCapacity {
  /** Blocks/s absorbed from a burst with no reads: the mean of a burst before and one after the loaded one. */
  alone: number;
  /** The same burst while Score runs open loop at OFFERED_RATE. */
  underReads: number;
  /** Score latency over that open-loop run (the burst inside it). */
  reads: Awaited<ReturnType<LoadClient['run']>>;
  /** The ingesting thread during the first quiet burst and the loaded one: CPU and run-queue wait per second. */
  threadAlone: ThreadLoad;
  threadUnderReads: ThreadLoad;
}

/** Seconds of CPU and of waiting for a CPU per second of a burst (Linux schedstat; NaN elsewhere). */
interface ThreadLoad {
  busy: number;
  wait: number;
}

/** CPU and run-queue wait (s) of the thread that ingests: the index thread's counters, or this (the service's) thread. */
export type ThreadClock = () => Promise<{ cpu: number; wait: number }>;

function ownThreadClock(): ThreadClock {
  return async () => {
    const s = threadSchedstat();
    return { cpu: s?.cpuSeconds ?? NaN, wait: s?.waitSeconds ?? NaN };
  };
}

function indexThreadClock(metricsPort: number): ThreadClock {
  return async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    return {
      cpu: metricSum(text, 'kv_indexer_index_thread_cpu_seconds_total'),
      wait: metricSum(text, 'kv_indexer_index_thread_runqueue_wait_seconds_total'),
    };
  };
}

/** Polls `stored` every 5 ms until it reaches `target`; resolves with the time it did (performance.now()). */
async function storedBy(stored: () => Promise<number>, target: number): Promise<number> {
  const deadline = performance.now() + 120_000;
  for (;;) {
    if ((await stored()) >= target) return performance.now();
    if (performance.now() > deadline) throw new Error(`grpc-threads: burst of blocks not stored (target ${target})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** One burst of `blocks` published as fast as the feeder can; blocks/s from its first send to the last stored. */
async function burstRate(
  feed: ZmqFeeder,
  stored: () => Promise<number>,
  blocks: number,
  clock: ThreadClock,
): Promise<{ rate: number; thread: ThreadLoad }> {
  const target = (await stored()) + blocks;
  const t0 = await clock();
  const started = performance.now();
  await feed.burst(blocks);
  const ms = (await storedBy(stored, target)) - started;
  const t1 = await clock();
  const thread = { busy: ((t1.cpu - t0.cpu) * 1000) / ms, wait: ((t1.wait - t0.wait) * 1000) / ms };
  return { rate: (blocks / ms) * 1000, thread };
}

/**
 * Issue 16: reads must not slow ingest by more than 10 %. With the paced ingest stopped, a burst is absorbed alone,
 * then while the load client offers Score at OFFERED_RATE (open loop, started first and lasting well past the
 * burst), then alone again; `alone` is the mean of the two quiet bursts, which bracket the loaded one in time.
 */
export async function ingestCapacity(
  client: LoadClient,
  feed: ZmqFeeder,
  stored: () => Promise<number>,
  blocks: number,
  clock: ThreadClock,
): Promise<IngestCapacity> {
  const before = await burstRate(feed, stored, blocks, clock);
  // Long enough for the burst at a tenth of its quiet rate, after a second of reads alone.
  const readSeconds = Math.ceil(1 + (10 * blocks) / before.rate);
  const reads = client.run({ type: 'open', seconds: readSeconds, rate: OFFERED_RATE });
  await new Promise((r) => setTimeout(r, 1_000));
  const readsStarted = performance.now();
  const underReads = await burstRate(feed, stored, blocks, clock);
  const burstEnded = performance.now();
  const readResult = await reads;
  if ((burstEnded - readsStarted) / 1000 > readSeconds - 1) {
    throw new Error(
      `grpc-threads: the loaded burst outlasted the reads meant to run beside it (${readSeconds - 1} s; quiet burst ${Math.round(before.rate)} blocks/s)`,
    );
  }
  const after = await burstRate(feed, stored, blocks, clock);
  return {
    alone: (before.rate + after.rate) / 2,
    underReads: underReads.rate,
    reads: readResult,
    threadAlone: before.thread,
    threadUnderReads: underReads.thread,
  };
}

/**
 * An ingestCapacity run's figures under `prefix`; `names.busy` and `names.wait` name what its clock measured (the
 * ingesting thread, or a whole service), each suffixed Alone and UnderReads.
 */
export function capacityFigures(
  prefix: string,
  c: IngestCapacity,
  names: { busy: string; wait: string; aloneGoal?: string },
): Record<string, Figure> {
  return {
    [`${prefix}IngestCapacityAlone`]: {
      value: c.alone,
      unit: 'blocks/s',
      ...(names.aloneGoal && { goal: names.aloneGoal }),
    },
    [`${prefix}IngestCapacityUnderReads`]: { value: c.underReads, unit: 'blocks/s' },
    [`${prefix}IngestUnderReadsVsAlone`]: { value: c.underReads / c.alone, unit: '×', goal: '≥ 0.9' },
    [`${prefix}BurstReadsP99`]: { value: c.reads.p99, unit: 'ms' },
    [`${prefix}BurstReadsErrors`]: { value: c.reads.errors, unit: 'calls' },
    [`${prefix}${names.busy}Alone`]: { value: c.threadAlone.busy, unit: 'cores' },
    [`${prefix}${names.wait}Alone`]: { value: c.threadAlone.wait, unit: 's/s' },
    [`${prefix}${names.busy}UnderReads`]: { value: c.threadUnderReads.busy, unit: 'cores' },
    [`${prefix}${names.wait}UnderReads`]: { value: c.threadUnderReads.wait, unit: 's/s' },
  };
}

function shapeFigures(s: Shape, r: ShapeResult): Record<string, Figure> {
  const { closed, open, openLower } = r.phases;
  return {
    [`${s}ClosedRequestsPerSecond`]: { value: closed.requestsPerSecond, unit: 'req/s', goal: `≥ ${OFFERED_RATE}` },
    [`${s}ClosedServerCpuPerCall`]: { value: cpuPerCall(closed), unit: 'µs' },
    [`${s}ClosedServerCpuCores`]: { value: closed.serverCpuCores ?? NaN, unit: 'cores' },
    [`${s}ClosedP50`]: { value: closed.p50, unit: 'ms' },
    [`${s}ClosedP99`]: { value: closed.p99, unit: 'ms' },
    [`${s}OpenRequestsPerSecond`]: { value: open.requestsPerSecond, unit: 'req/s' },
    [`${s}OpenP50`]: { value: open.p50, unit: 'ms' },
    [`${s}OpenP99`]: { value: open.p99, unit: 'ms', goal: '≤ 5' },
    [`${s}OpenP999`]: { value: open.p999, unit: 'ms', goal: '≤ 20' },
    [`${s}OpenMax`]: { value: open.max, unit: 'ms' },
    [`${s}OpenMaxInFlight`]: { value: open.maxInFlight ?? 0, unit: 'calls' },
    [`${s}OpenServerCpuCores`]: { value: open.serverCpuCores ?? NaN, unit: 'cores' },
    [`${s}OpenMainGcMaxPause`]: { value: open.serverGcMaxMs ?? NaN, unit: 'ms' },
    [`${s}OpenMainGcTotal`]: { value: open.serverGcTotalMs ?? NaN, unit: 'ms' },
    [`${s}OpenMainLoopDelayP99`]: { value: open.serverLoopDelayP99Ms ?? NaN, unit: 'ms' },
    [`${s}OpenMainLoopDelayMax`]: { value: open.serverLoopDelayMaxMs ?? NaN, unit: 'ms' },
    [`${s}LowerRateP50`]: { value: openLower.p50, unit: 'ms' },
    [`${s}LowerRateP99`]: { value: openLower.p99, unit: 'ms' },
    [`${s}ClientSendLagP99`]: { value: open.sendLagP99 ?? 0, unit: 'ms' },
    [`${s}Errors`]: {
      value: closed.errors + open.errors + openLower.errors + (r.phases.h2load?.errors ?? 0),
      unit: 'calls',
    },
    [`${s}IngestedBlocksPerSecond`]: { value: r.phases.ingestedPerSecond, unit: 'blocks/s' },
    [`${s}FeederBlocksPerSecond`]: { value: r.feederBlocksPerSecond, unit: 'blocks/s' },
    [`${s}FeederCpuCores`]: { value: r.feederCpuCores, unit: 'cores' },
    [`${s}FeederTimerLateMax`]: { value: r.feederTimerLateMaxMs, unit: 'ms' },
    [`${s}IngestLagEndOfPhases`]: { value: r.lagBlocksEndOfPhases, unit: 'blocks' },
    [`${s}FillSeconds`]: { value: r.fillSeconds, unit: 's' },
    [`${s}SequenceGaps`]: { value: r.transport.gaps, unit: 'gaps' },
    [`${s}MessagesDroppedOrLost`]: {
      value: r.transport.dropped + r.transport.lost + r.transport.decodeErrors,
      unit: 'messages',
    },
    [`${s}Rss`]: { value: r.rssBytes / 2 ** 20, unit: 'MiB' },
    ...capacityFigures(s, r.capacity, { busy: 'IngestThreadBusy', wait: 'IngestThreadWait', aloneGoal: '≥ 1000000' }),
    ...(r.phases.h2load && {
      [`${s}H2loadRequestsPerSecond`]: { value: r.phases.h2load.requestsPerSecond, unit: 'req/s' },
    }),
  };
}

/** A free TCP port on loopback, from the OS (listen on 0, close): the ZMQ bind address of the service. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls `check` every 50 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`grpc-threads: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sum of a counter family's samples on a /metrics page (every label). */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

interface RunningShape {
  grpcAddress: string;
  metricsPort: number;
  stop(): Promise<void>;
}

async function startShape(shape: Shape, zmqAddress: string): Promise<RunningShape> {
  const config = embeddedConfig({
    api: { indexThread: shape !== 'single', leanHttp2: shape !== 'threadNode' },
    zmq: { addresses: [zmqAddress] },
  });
  if (shape === 'single') {
    const embedded = await startEmbedded(config);
    return { grpcAddress: embedded.grpcAddress, metricsPort: embedded.api.metricsPort, stop: () => embedded.stop() };
  }
  const svc = await startThreaded(config, createLogger('silent'));
  return { grpcAddress: `127.0.0.1:${svc.grpcPort}`, metricsPort: svc.metricsPort, stop: () => svc.stop() };
}

interface ScoreReply {
  scores: { endpoint: string; matchedBlocks: number }[];
}

/**
 * Every resident prompt scored through a real gRPC client: its 4 holders at all 64 blocks, every other candidate at
 * 0. Throws (the suite fails) on the first that is not, with what came back.
 */
export async function checkScores(
  call: <T>(method: string, req: object) => Promise<T>,
  requests: object[],
  when: string,
): Promise<void> {
  const n = BENCH_CANDIDATES.length;
  for (let p = 0; p < requests.length; p++) {
    const reply = await call<ScoreReply>('Score', requests[p]);
    const holders = new Set(Array.from({ length: HOLDERS }, (_, k) => BENCH_CANDIDATES[(p + k * 4) % n]));
    const full = reply.scores.filter((s) => s.matchedBlocks === BLOCKS_PER_PROMPT).map((s) => s.endpoint);
    const other = reply.scores.filter((s) => !holders.has(s.endpoint) && s.matchedBlocks !== 0);
    if (full.length !== HOLDERS || !full.every((e) => holders.has(e)) || other.length > 0) {
      const got = reply.scores.map((s) => `${s.endpoint}=${s.matchedBlocks}`).join(', ');
      throw new Error(
        `grpc-threads: ${when}, prompt ${p} should match ${BLOCKS_PER_PROMPT} blocks on exactly ${[...holders].join(', ')}; got ${got}`,
      );
    }
  }
}

/**
 * Starts one shape of the service on a ZMQ address of its own, feeds it from a new feeder process (probe, resident
 * prompts, background ring, then 100k blocks/s), checks Score, runs the phases, checks again, and stops everything
 * it started, also on failure.
 */
async function measureShape(
  client: LoadClient,
  shape: Shape,
  seconds: number,
  data: { prompts: number[][]; tokenPool: number[][]; requests: object[] },
  residentBlocks: number,
  burstBlocks: number,
): Promise<ShapeResult> {
  const zmqAddress = `tcp://127.0.0.1:${await freePort()}`;
  const service = await startShape(shape, zmqAddress);
  let rpc: ReturnType<typeof grpcClient> | null = null;
  let feeder: ZmqFeeder | null = null;
  try {
    rpc = grpcClient(service.grpcAddress, 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer');
    const call = rpc.call;
    const stats = () =>
      call<{ eventsReceived: string; blocksStored: string }>('GetStats', {}).then((s) => ({
        eventsReceived: Number(s.eventsReceived),
        blocksStored: Number(s.blocksStored),
      }));
    feeder = await ZmqFeeder.start();
    const feed = feeder;
    await feed.setup({
      address: zmqAddress,
      endpoints: BENCH_CANDIDATES,
      prompts: data.prompts,
      tokenPool: data.tokenPool,
      residentBlocks,
      blocksPerSecond: INGEST_BLOCKS_PER_SECOND,
      seed: { single: 11, thread: 12, threadNode: 13 }[shape],
    });
    // ZMQ's slow joiner: what a PUB sends before the subscription reached it is dropped. Probes (no events, a topic
    // of their own) until the service has received one; from then on the connection carries everything in order.
    await feed.probe();
    await until(async () => (await stats()).eventsReceived > 0, 'the first ZMQ probe to arrive', 15_000);
    await feed.probeStop();
    const residentPublished = await feed.resident();
    await until(
      async () => (await stats()).blocksStored >= residentPublished,
      `${residentPublished} resident blocks stored`,
      30_000,
    );
    await checkScores(call, data.requests, `${shape}, resident prompts published`);
    const fillStarted = performance.now();
    const background = await feed.fill();
    await until(
      async () => (await stats()).blocksStored >= residentPublished + background,
      `${background} background blocks stored`,
      180_000,
    );
    const fillSeconds = (performance.now() - fillStarted) / 1000;
    await feed.startIngest();
    await checkScores(call, data.requests, `${shape}, background ring filled and ingest at 100k blocks/s running`);

    const responseBytes = await client.setup(service.grpcAddress, data.requests);
    const marks: FeederCount[] = [];
    let lagBlocksEndOfPhases = NaN;
    const result = await phases(
      client,
      seconds,
      { address: service.grpcAddress, request: serialise(data.requests[0]), responseBytes },
      async () => {
        // GetStats first, then the feeder's count: the lag is then never negative, and high by at most what the
        // feeder published in between (a 10 ms tick, ~1,000 blocks).
        const s = await stats();
        const f = await feed.count();
        marks.push(f);
        lagBlocksEndOfPhases = residentPublished + f.stored - s.blocksStored;
        return s.blocksStored;
      },
    );
    const rssBytes = process.memoryUsage().rss;
    await checkScores(call, data.requests, `${shape}, after the phases (ingest still running)`);
    const stopped = await feed.stopIngest();
    await until(
      async () => (await stats()).blocksStored >= residentPublished + stopped.stored,
      'the paced ingest stored',
      60_000,
    );
    const clock = shape !== 'single' ? indexThreadClock(service.metricsPort) : ownThreadClock();
    const capacity = await ingestCapacity(client, feed, async () => (await stats()).blocksStored, burstBlocks, clock);
    await client.close();
    // Every block published must arrive (the suite fails otherwise).
    const published = residentPublished + (await feed.count()).stored;
    await until(
      async () => (await stats()).blocksStored >= published,
      `all ${published} published blocks stored`,
      60_000,
    );
    const metrics = await (await fetch(`http://127.0.0.1:${service.metricsPort}/metrics`)).text();
    const transport = {
      gaps: metricSum(metrics, 'kv_indexer_sequence_gaps_total'),
      dropped: metricSum(metrics, 'kv_indexer_messages_dropped_total'),
      lost: metricSum(metrics, 'kv_indexer_lost_batches_total'),
      decodeErrors: metricSum(metrics, 'kv_indexer_decode_errors_total'),
    };
    const [first, last] = [marks[0], marks[marks.length - 1]];
    const window = (last.at - first.at) / 1000;
    return {
      phases: result,
      feederBlocksPerSecond: (last.stored - first.stored) / window,
      feederCpuCores: (last.cpuSeconds - first.cpuSeconds) / window,
      feederTimerLateMaxMs: stopped.timerLateMaxMs,
      rssBytes,
      fillSeconds,
      lagBlocksEndOfPhases,
      transport,
      capacity,
    };
  } finally {
    await feeder?.exit();
    rpc?.close();
    await service.stop();
  }
}
