import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { grpcClient } from '../../test/support/grpc-client.js';
import type { Figure, Suite } from '../harness.js';
import { CONNECTIONS, LoadClient } from '../support/load-client.js';
import { BENCH_CANDIDATES, BENCH_PROMPT_TOKENS } from '../support/resident-prompts.js';
import { ZmqFeeder } from '../support/zmq-feeder.js';
import {
  cpuPerCall,
  INGEST_BLOCKS_PER_SECOND,
  LOWER_RATE,
  OFFERED_RATE,
  phases,
  RESIDENT_BLOCKS,
  serialise,
} from './grpc.js';
import {
  capacityFigures,
  checkScores,
  freePort,
  ingestCapacity,
  metricSum,
  PROMPTS,
  scoreWorkload,
  until,
  type IngestCapacity,
  type ThreadClock,
} from './grpc-threads.js';

const REPO = new URL('../../', import.meta.url).pathname;
/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks on every mainstream architecture. */
const TICKS_PER_SECOND = 100;

/** The serving-process counts measured: 1, 2 and the machine's cores (issue 16: "1, 2, and the machine's cores"). */
function processCounts(): number[] {
  return [...new Set([1, 2, availableParallelism()])].sort((a, b) => a - b);
}

interface Spawned {
  child: ChildProcess;
  grpcAddress: string;
  metricsPort: number;
  /** The primary (or the single process) and every serving process. */
  pids: number[];
  stop(): Promise<void>;
}

/**
 * `kv-indexer serve` as an operator runs it (the CLI through tsx, its own processes), bound to `zmqAddress`, with
 * api.processes = `processes` (1: the default single-loop service, no primary).
 */
async function spawnService(processes: number, zmqAddress: string): Promise<Spawned> {
  const settings = [
    'zmq.mode=bind',
    `zmq.addresses=["${zmqAddress}"]`,
    'api.grpcAddress=127.0.0.1:0',
    `api.processes=${processes}`,
    'metrics.host=127.0.0.1',
    'metrics.port=0',
    'log.level=info',
    'log.statsIntervalSeconds=0',
  ].flatMap((s) => ['--set', s]);
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'serve', ...settings], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const serving = await new Promise<{ grpcPort: number; metricsPort: number; pids?: number[] }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('grpc-processes: the service did not start in 60 s')), 60_000);
    void exited.then(() => reject(new Error('grpc-processes: the service exited during start-up')));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.includes('"API serving"')) return;
      const record = JSON.parse(line) as { grpcPort: number; metricsPort: number; pids?: number[] };
      clearTimeout(timer);
      resolve(record);
    });
  });
  return {
    child,
    grpcAddress: `127.0.0.1:${serving.grpcPort}`,
    metricsPort: serving.metricsPort,
    pids: [child.pid!, ...(serving.pids ?? [])],
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** CPU seconds used so far by `pids` together (user + system, /proc/<pid>/stat). */
function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of proc(5))
  }
  return ticks / TICKS_PER_SECOND;
}

/**
 * The service's CPU (every process, every thread) and its ingesting threads' wait for a CPU: each process's main
 * thread, where the ZMQ ingest runs, from /proc/<pid>/schedstat (ns on the run queue, proc(5)).
 */
function processesClock(pids: number[]): ThreadClock {
  return () => {
    let waitNs = 0;
    for (const pid of pids.slice(pids.length > 1 ? 1 : 0)) {
      const fields = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(' ');
      waitNs += Number(fields[1]);
    }
    return Promise.resolve({ cpu: cpuSeconds(pids), wait: waitNs / 1e9 });
  };
}

/** Resident memory of `pids` together (bytes, VmRSS). */
function rssBytes(pids: number[]): number {
  let kb = 0;
  for (const pid of pids) {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    kb += m ? Number(m[1]) : 0;
  }
  return kb * 1024;
}

/** Blocks stored by the replica that has stored the fewest (every serving process ingests every block). */
async function storedByAll(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const byWorker = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('kv_indexer_blocks_total{') || !line.includes('op="stored"')) continue;
    const worker = /worker="(\d+)"/.exec(line)?.[1] ?? '';
    byWorker.set(worker, Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return byWorker.size === 0 ? 0 : Math.min(...byWorker.values());
}

/**
 * The lean server's no-op Score in a process of its own (bench/support/noop-lean-server.ts): the ceiling, measured as
 * the service is, in its own process, CPU from /proc.
 */
async function spawnedNoopCeiling(client: LoadClient, seconds: number, requests: object[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/support/noop-lean-server.ts'], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      void exited.then(() => reject(new Error('grpc-processes: the no-op server exited')));
      createInterface({ input: child.stdout! }).once('line', (line) =>
        resolve((JSON.parse(line) as { port: number }).port),
      );
    });
    const address = `127.0.0.1:${port}`;
    const responseBytes = await client.setup(address, requests);
    return await phases(client, seconds, { address, request: serialise(requests[0]), responseBytes }, undefined, () =>
      cpuSeconds([child.pid!]),
    );
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

interface CountResult {
  phases: Awaited<ReturnType<typeof phases>>;
  capacity: IngestCapacity;
  rssBytes: number;
  fillSeconds: number;
  gaps: number;
  lost: number;
}

async function measure(
  client: LoadClient,
  processes: number,
  seconds: number,
  data: { prompts: number[][]; tokenPool: number[][]; requests: object[] },
  residentBlocks: number,
  burstBlocks: number,
): Promise<CountResult> {
  const zmqAddress = `tcp://127.0.0.1:${await freePort()}`;
  const service = await spawnService(processes, zmqAddress);
  const stored = () => storedByAll(service.metricsPort);
  // One grpc-js client per serving process: node:cluster hands new connections out in turn.
  const rpcs = Array.from({ length: processes }, (_, i) =>
    grpcClient(
      service.grpcAddress,
      'kvindexer/v1/kvindexer.proto',
      'kvindexer.v1.KvIndexer',
      undefined,
      {},
      {
        'grpc.primary_user_agent': `bench-${i}`,
      },
    ),
  );
  let feeder: ZmqFeeder | null = null;
  try {
    const checkAll = async (when: string) => {
      for (const [i, rpc] of rpcs.entries()) await checkScores(rpc.call, data.requests, `${when} (client ${i})`);
    };
    feeder = await ZmqFeeder.start();
    const feed = feeder;
    await feed.setup({
      address: zmqAddress,
      endpoints: BENCH_CANDIDATES,
      prompts: data.prompts,
      tokenPool: data.tokenPool,
      residentBlocks,
      blocksPerSecond: INGEST_BLOCKS_PER_SECOND,
      seed: 20 + processes,
    });
    await feed.probe();
    await until(
      async () => {
        const text = await (await fetch(`http://127.0.0.1:${service.metricsPort}/metrics`)).text();
        const received = text.split('\n').filter((l) => /^kv_indexer_messages_received_total(\{|\s)/.test(l));
        return received.filter((l) => Number(l.slice(l.lastIndexOf(' ') + 1)) > 0).length >= processes;
      },
      'the first ZMQ probe to reach every serving process',
      30_000,
    );
    await feed.probeStop();
    const residentPublished = await feed.resident();
    await until(async () => (await stored()) >= residentPublished, `${residentPublished} resident blocks`, 60_000);
    await checkAll(`${processes} processes, resident prompts published`);
    const fillStarted = performance.now();
    const background = await feed.fill();
    await until(
      async () => (await stored()) >= residentPublished + background,
      `${background} background blocks stored by every process`,
      300_000,
    );
    const fillSeconds = (performance.now() - fillStarted) / 1000;
    await feed.startIngest();
    await checkAll(`${processes} processes, ingest at 100k blocks/s running`);
    const responseBytes = await client.setup(service.grpcAddress, data.requests);
    const result = await phases(
      client,
      seconds,
      { address: service.grpcAddress, request: serialise(data.requests[0]), responseBytes },
      stored,
      () => cpuSeconds(service.pids),
    );
    const rss = rssBytes(service.pids);
    await checkAll(`${processes} processes, after the phases`);
    const stopped = await feed.stopIngest();
    await until(
      async () => (await stored()) >= residentPublished + stopped.stored,
      'the paced ingest stored by every process',
      120_000,
    );
    // Issue 16's "ingest not slowed by reads": bursts absorbed by every replica, alone and under Score at 5,000/s.
    const capacity = await ingestCapacity(client, feed, stored, burstBlocks, processesClock(service.pids));
    await client.close();
    const published = residentPublished + (await feed.count()).stored;
    await until(async () => (await stored()) >= published, 'every published block stored by every process', 120_000);
    const metrics = await (await fetch(`http://127.0.0.1:${service.metricsPort}/metrics`)).text();
    return {
      phases: result,
      capacity,
      rssBytes: rss,
      fillSeconds,
      gaps: metricSum(metrics, 'kv_indexer_sequence_gaps_total'),
      lost:
        metricSum(metrics, 'kv_indexer_lost_batches_total') + metricSum(metrics, 'kv_indexer_messages_dropped_total'),
    };
  } finally {
    await feeder?.exit();
    for (const rpc of rpcs) rpc.close();
    await service.stop();
  }
}

function countFigures(n: number, r: CountResult, noopClosed: number): Record<string, Figure> {
  const { closed, open, openLower } = r.phases;
  const p = `p${n}`;
  return {
    [`${p}ClosedRequestsPerSecond`]: { value: closed.requestsPerSecond, unit: 'req/s' },
    [`${p}ClosedRequestsPerSecondPerProcess`]: { value: closed.requestsPerSecond / n, unit: 'req/s' },
    [`${p}ClosedVsNoop`]: { value: closed.requestsPerSecond / noopClosed, unit: '×', goal: '≥ 0.8' },
    [`${p}ClosedServerCpuPerCall`]: { value: cpuPerCall(closed), unit: 'µs' },
    [`${p}ClosedServerCpuCores`]: { value: closed.serverCpuCores ?? NaN, unit: 'cores' },
    [`${p}ClosedP99`]: { value: closed.p99, unit: 'ms' },
    [`${p}OpenRequestsPerSecond`]: { value: open.requestsPerSecond, unit: 'req/s' },
    [`${p}OpenP50`]: { value: open.p50, unit: 'ms' },
    [`${p}OpenP99`]: { value: open.p99, unit: 'ms', goal: '≤ 5' },
    [`${p}OpenP999`]: { value: open.p999, unit: 'ms', goal: '≤ 20' },
    [`${p}OpenServerCpuCores`]: { value: open.serverCpuCores ?? NaN, unit: 'cores' },
    [`${p}LowerRateP99`]: { value: openLower.p99, unit: 'ms' },
    [`${p}ClientSendLagP99`]: { value: open.sendLagP99 ?? 0, unit: 'ms' },
    [`${p}Errors`]: { value: closed.errors + open.errors + openLower.errors, unit: 'calls' },
    [`${p}IngestedBlocksPerSecond`]: { value: r.phases.ingestedPerSecond, unit: 'blocks/s' },
    [`${p}FillSeconds`]: { value: r.fillSeconds, unit: 's' },
    [`${p}SequenceGaps`]: { value: r.gaps, unit: 'gaps' },
    [`${p}MessagesDroppedOrLost`]: { value: r.lost, unit: 'messages' },
    [`${p}Rss`]: { value: r.rssBytes / 2 ** 20, unit: 'MiB' },
    ...capacityFigures(p, r.capacity, { busy: 'ServiceBusy', wait: 'IngestWait' }),
  };
}

/**
 * Issue 16, scaling by serving processes: the grpc-threads workload (Score, tokens in, 16 candidates; the resident
 * prompts, a background ring and 100k blocks/s over ZMQ from a feeder process) against the real CLI with
 * api.processes = 1, 2 and the machine's cores, each bound to its own ZMQ address (with more than one process, the
 * primary binds it and relays every message to each process's replica). Reports req/s per process count and per
 * process, the open-loop tail at 5,000/s, server CPU (every process of the service, /proc) and resident memory (× N:
 * each process holds a whole replica). The lean no-op handler in a process of its own, same run, is the ceiling.
 */
export const grpcProcessesSuite: Suite = {
  name: 'grpc-processes',
  description: 'gRPC Score with 100k blocks/s over ZMQ, the CLI with api.processes = 1, 2, cores',
  async run({ quick }) {
    const seconds = quick ? 2 : 10;
    const data = scoreWorkload();
    const { requests } = data;
    const counts = processCounts();
    const client = await LoadClient.start();
    const results = new Map<number, CountResult>();
    let noop: Awaited<ReturnType<typeof spawnedNoopCeiling>>;
    try {
      for (const n of counts)
        results.set(
          n,
          await measure(client, n, seconds, data, quick ? 2 ** 14 : RESIDENT_BLOCKS, quick ? 2 ** 17 : 2 ** 20),
        );
      noop = await spawnedNoopCeiling(client, seconds, requests);
    } finally {
      client.exit();
    }
    const figures: Record<string, Figure> = {};
    for (const n of counts) Object.assign(figures, countFigures(n, results.get(n)!, noop.closed.requestsPerSecond));
    const one = results.get(1)!.phases.closed.requestsPerSecond;
    for (const n of counts.filter((c) => c > 1))
      figures[`p${n}ClosedVsP1`] = { value: results.get(n)!.phases.closed.requestsPerSecond / one, unit: '×' };
    Object.assign(figures, {
      noopClosedRequestsPerSecond: { value: noop.closed.requestsPerSecond, unit: 'req/s' },
      noopClosedServerCpuPerCall: { value: cpuPerCall(noop.closed), unit: 'µs' },
      noopOpenP99: { value: noop.open.p99, unit: 'ms' },
      noopOpenP999: { value: noop.open.p999, unit: 'ms' },
      noopClientSendLagP99: { value: noop.open.sendLagP99 ?? 0, unit: 'ms' },
      cores: { value: availableParallelism(), unit: 'cores' },
    } satisfies Record<string, Figure>);
    return {
      parameters: {
        seconds,
        processCounts: counts,
        service:
          'node --import tsx src/cli/main.ts serve --set …: zmq bind on a free loopback port, api.processes = N (1: one process, no primary), lean HTTP/2 server (default), memory index',
        candidates: BENCH_CANDIDATES.length,
        promptTokens: BENCH_PROMPT_TOKENS,
        residentPrompts: `${PROMPTS} prompts on 4 of the candidates each, checked through one grpc-js client per process before and after the phases`,
        backgroundBlocksPerSecond: INGEST_BLOCKS_PER_SECOND,
        backgroundResidentBlocks: quick ? 2 ** 14 : RESIDENT_BLOCKS,
        client: `the grpc suite's load client (child process, ${CONNECTIONS} HTTP/2 connections, spread over the processes by node:cluster)`,
        openLoopOfferedRate: OFFERED_RATE,
        openLoopLowerRate: LOWER_RATE,
        serverCpu: '/proc/<pid>/stat of the primary and every serving process',
        rss: 'VmRSS of the primary and every serving process',
        stored: 'kv_indexer_blocks_total{op="stored"} of the replica that has stored the fewest (primary /metrics)',
        ingestCapacity:
          "paced feed stopped; a burst of 2^20 blocks (2^17 quick; stores with their evictions) published as fast as the feeder can, alone, then while Score runs open loop at 5,000/s, then alone again; blocks over the time from the first send to the last block counted stored by every replica (the one that has stored the fewest); alone = mean of the two quiet bursts. ServiceBusy: CPU of every process per second of a burst; IngestWait: run-queue wait of the serving processes' main threads (the ingesting ones), /proc/<pid>/schedstat",
        ceiling:
          'the lean server with a no-op Score in a process of its own (bench/support/noop-lean-server.ts), same client, same run',
      },
      figures,
    };
  },
};
