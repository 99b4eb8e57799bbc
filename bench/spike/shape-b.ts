/**
 * Spike (issue 16), shape B: N serving processes (node:cluster, sharing the gRPC port), each with its own index fed
 * by the primary, which forwards raw vLLM event batches (msgpack, as they come off ZMQ) over IPC. Measured with the
 * grpc suite's load client (child process, raw HTTP/2, 4 connections) and its phases: closed loop (16 in flight),
 * open loop at 5,000/s and at 3,000/s, each SPIKE_SECONDS (default 10).
 *
 *   node --expose-gc --import tsx bench/spike/shape-b.ts inproc:1 fed:1 fed:2 noop:1 noop:2
 *
 * Configurations (mode:N): inproc = today's shape (one process ingesting its own generated events), fed = shape B,
 * noop = the no-op Score handler (the ceiling). SPIKE_EXEC_ARGV adds V8 flags to the serving processes.
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer } from 'node:net';
import { rng, realisticTokens } from '../harness.js';
import { LoadClient, type PhaseResult } from '../suites/grpc.js';
import { BENCH_CANDIDATES, BENCH_PROMPT_TOKENS } from '../support/resident-prompts.js';
import { ingestGenerator } from './ingest-load.js';
import type { KvEvent } from '../../src/events/types.js';

const SECONDS = Number(process.env.SPIKE_SECONDS ?? 10);
const INGEST_RATE = Number(process.env.SPIKE_INGEST_RATE ?? 100_000);

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function once<T>(w: Worker, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number) => reject(new Error(`worker exited (${code}) waiting for ${type}`));
    const on = (m: { type: string }) => {
      if (m.type !== type) return;
      w.off('message', on);
      w.off('exit', onExit);
      resolve(m as T);
    };
    w.on('message', on);
    w.once('exit', onExit);
  });
}

// --- raw vLLM batches (array encoding, uint64 hashes), written by hand: the real primary forwards ZMQ frames as
// they come, so the bench's own encoding must cost it little.
const tokenBytes = new Map<Uint32Array, Buffer>();
function encodeTokens(t: Uint32Array): Buffer {
  let b = tokenBytes.get(t);
  if (b) return b;
  const out: number[] = [0xdc, t.length >> 8, t.length & 0xff];
  for (const v of t) {
    if (v < 128) out.push(v);
    else if (v < 256) out.push(0xcc, v);
    else if (v < 65536) out.push(0xcd, v >> 8, v & 0xff);
    else out.push(0xce, (v >>> 24) & 0xff, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
  }
  b = Buffer.from(out);
  tokenBytes.set(t, b);
  return b;
}
const STORED = Buffer.from([0x99, 0xab, ...Buffer.from('BlockStored')]);
const REMOVED = Buffer.from([0x93, 0xac, ...Buffer.from('BlockRemoved')]);
const GPU = Buffer.from([0xa3, ...Buffer.from('GPU')]);
function encodeEvents(events: KvEvent[]): Buffer {
  const out = Buffer.allocUnsafe(16 + events.length * (32 + 16 * 9) + 4096);
  let at = 0;
  out[at++] = 0x93;
  out[at++] = 0xcb;
  out.writeDoubleBE(Date.now() / 1000, at);
  at += 8;
  out[at++] = 0x90 | events.length;
  const hashes = (h: BigUint64Array) => {
    out[at++] = 0xdc;
    out.writeUInt16BE(h.length, at);
    at += 2;
    const w = new Uint32Array(h.buffer, h.byteOffset, h.length * 2);
    for (let i = 0; i < h.length; i++) {
      out[at++] = 0xcf;
      out.writeUInt32BE(w[2 * i + 1], at);
      out.writeUInt32BE(w[2 * i], at + 4);
      at += 8;
    }
  };
  for (const ev of events) {
    if (ev.type === 'BlockStored') {
      at += STORED.copy(out, at);
      hashes(ev.blockHashes);
      out[at++] = 0xc0; // parent
      const t = encodeTokens(ev.tokenIds as Uint32Array);
      const grown = at + t.length + 16 > out.length;
      if (grown) throw new Error('encode buffer too small');
      at += t.copy(out, at);
      out[at++] = 0x10; // block size 16
      out[at++] = 0xc0; // lora_id
      at += GPU.copy(out, at);
      out[at++] = 0xc0; // lora_name
      out[at++] = 0xc0; // extra_keys
    } else if (ev.type === 'BlockRemoved') {
      at += REMOVED.copy(out, at);
      hashes(ev.blockHashes);
      at += GPU.copy(out, at);
    }
  }
  out[at++] = 0xc0; // rank
  return out.subarray(0, at);
}

interface WorkerReport {
  pid: number;
  cpuCores: number;
  rssMb: number;
  blocksStored: number;
  serverGcMaxMs: number;
  serverGcTotalMs: number;
  serverLoopDelayP99Ms: number;
  serverLoopDelayMaxMs: number;
}

const debug = (s: string) => process.env.SPIKE_DEBUG && console.error(`${new Date().toISOString()} ${s}`);

async function runConfig(client: LoadClient, mode: string, n: number, requests: object[]) {
  const port = await freePort();
  const extra = (process.env.SPIKE_EXEC_ARGV ?? '').split(' ').filter(Boolean);
  cluster.setupPrimary({
    exec: new URL('./shape-b-worker.ts', import.meta.url).pathname,
    execArgv: ['--import', 'tsx', ...extra],
    stdio: ['inherit', 'inherit', 'inherit', 'ipc', 'pipe'],
  });
  const workers = Array.from({ length: n }, () =>
    cluster.fork({ SPIKE_MODE: mode, SPIKE_PORT: String(port), SPIKE_INGEST_RATE: String(INGEST_RATE) }),
  );
  // The ingest pipes (fd 4) reset when a worker exits: not an error of the run.
  for (const w of workers) (w.process.stdio![4] as import('node:stream').Duplex).on('error', () => undefined);
  await Promise.all(workers.map((w) => once(w, 'ready')));
  debug('workers ready');
  let stopForward = () => {};
  if (mode === 'fed') {
    const pipes = workers.map((w) => w.process.stdio![4] as import('node:stream').Writable);
    const frame = (endpoint: string, events: KvEvent[]) => {
      const payload = encodeEvents(events);
      const out = Buffer.allocUnsafe(5 + payload.length);
      out.writeUInt32LE(payload.length, 0);
      out[4] = BENCH_CANDIDATES.indexOf(endpoint);
      payload.copy(out, 5);
      return out;
    };
    const gen = ingestGenerator(BENCH_CANDIDATES, rng(77));
    // The ring filled through the workers, a chunk at a time (a sync round trip per chunk: IPC messages and pipe bytes
    // are separate channels, so the round trip only paces the primary).
    while (gen.events < gen.slots) {
      const frames = [];
      for (let i = 0; i < 1024 && gen.events < gen.slots; i++) {
        const x = gen.next();
        frames.push(frame(x.endpoint, x.events));
      }
      const chunk = Buffer.concat(frames);
      await Promise.all(pipes.map((p) => new Promise((r) => p.write(chunk, r))));
    }
    debug('filled');
    let pending: Buffer[] = [];
    const stopGen = gen.start((endpoint, events) => void pending.push(frame(endpoint, events)), INGEST_RATE);
    // The forwarder: every 10 ms, whatever batches came in, written to every serving process's pipe.
    const timer = setInterval(() => {
      if (pending.length === 0) return;
      const chunk = pending.length === 1 ? pending[0] : Buffer.concat(pending);
      pending = [];
      for (const p of pipes) p.write(chunk);
    }, 10);
    stopForward = () => {
      stopGen();
      clearInterval(timer);
    };
  }
  const mark = () => Promise.all(workers.map((w) => (w.send({ type: 'mark' }), once(w, 'marked'))));
  const report = () => Promise.all(workers.map((w) => (w.send({ type: 'report' }), once<WorkerReport>(w, 'report'))));
  const phase = async (p: Parameters<LoadClient['run']>[0]) => {
    const marks = (await mark()) as unknown as { blocksStored: number }[];
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const result = await client.run(p);
    const used = process.cpuUsage(cpu);
    const primaryCpuCores = (used.user + used.system) / 1e6 / ((performance.now() - t0) / 1000);
    const workersReport = await report();
    const seconds = (performance.now() - t0) / 1000;
    const ingested = workersReport.map((r, i) => Math.round((r.blocksStored - marks[i].blocksStored) / seconds));
    return { result, primaryCpuCores, workers: workersReport, ingestedBlocksPerSecond: ingested };
  };
  try {
    await client.setup(`127.0.0.1:${port}`, requests);
    debug('client set up');
    await client.run({ type: 'closed', seconds: 2, concurrency: 16 });
    const closed = await phase({ type: 'closed', seconds: SECONDS, concurrency: 16 });
    const open = await phase({ type: 'open', seconds: SECONDS, rate: 5_000 });
    const lower = await phase({ type: 'open', seconds: SECONDS, rate: 3_000 });
    await client.close();
    return { config: `${mode}:${n}`, closed, open, lower };
  } finally {
    stopForward();
    for (const w of workers) w.send({ type: 'stop' });
    await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
  }
}

function summarise(r: Awaited<ReturnType<typeof runConfig>>) {
  const w = (phase: { workers: WorkerReport[] }) => phase.workers;
  const fmt = (x: number) => Number(x.toPrecision(3));
  const lat = (p: PhaseResult) => ({
    rps: Math.round(p.requestsPerSecond),
    p50: fmt(p.p50),
    p99: fmt(p.p99),
    p999: fmt(p.p999),
    max: fmt(p.max),
    errors: p.errors,
  });
  return {
    config: r.config,
    closed: lat(r.closed.result),
    open5000: { ...lat(r.open.result), maxInFlight: r.open.result.maxInFlight },
    open3000: lat(r.lower.result),
    closedServerCpu: w(r.closed).map((x) => fmt(x.cpuCores)),
    // Serving processes' CPU per call in the closed loop (ingest included): robust to a busy machine, unlike req/s.
    closedCpuUsPerCall: fmt(
      (w(r.closed).reduce((a, x) => a + x.cpuCores, 0) * 1e6) / r.closed.result.requestsPerSecond,
    ),
    closedPrimaryCpu: fmt(r.closed.primaryCpuCores),
    open5000ServerCpu: w(r.open).map((x) => fmt(x.cpuCores)),
    open5000PrimaryCpu: fmt(r.open.primaryCpuCores),
    open5000GcMaxMs: w(r.open).map((x) => fmt(x.serverGcMaxMs)),
    open5000GcTotalMs: w(r.open).map((x) => fmt(x.serverGcTotalMs)),
    open5000LoopDelayP99Ms: w(r.open).map((x) => fmt(x.serverLoopDelayP99Ms)),
    open3000LoopDelayP99Ms: w(r.lower).map((x) => fmt(x.serverLoopDelayP99Ms)),
    rssMb: w(r.lower).map((x) => Math.round(x.rssMb)),
    ingestedBlocksPerSecond: { closed: r.closed.ingestedBlocksPerSecond, open5000: r.open.ingestedBlocksPerSecond },
    clientCpuOpen5000: fmt(r.open.result.clientCpuCores),
  };
}

const configs = process.argv.slice(2).map((a) => {
  const [mode, n] = a.split(':');
  return { mode, n: Number(n ?? 1) };
});
const random = rng(5);
const prompts = Array.from({ length: 64 }, () => Array.from(realisticTokens(BENCH_PROMPT_TOKENS, random)));
const requests = prompts.map((tokens) => ({
  model: 'model',
  tokens: { tokenIds: tokens },
  candidates: BENCH_CANDIDATES,
}));
const client = await LoadClient.start();
const { loadavg } = await import('node:os');
try {
  for (const c of configs) {
    const load = loadavg()[0];
    const r = await runConfig(client, c.mode, c.n, requests);
    console.log(JSON.stringify({ loadavg1: Number(load.toFixed(2)), ...summarise(r) }));
    if (process.env.SPIKE_VERBOSE) console.log(JSON.stringify(r));
  }
} finally {
  client.exit();
}
