/**
 * Spike (issue 16), shape B: one serving process, forked by bench/spike/shape-b.ts with node:cluster (the workers
 * share the gRPC port; the primary accepts connections and hands them out round-robin). Modes (env SPIKE_MODE):
 *   fed     the service with its own index, ingesting the raw vLLM batches the primary forwards over IPC
 *           (decodeEventBatch + Ingestor.applySync per batch: what a replica fed raw ZMQ frames would do);
 *   inproc  today's shape: the service ingesting the grpc suite's events generated in the same process;
 *   noop    the grpc suite's no-op Score handler (the ceiling of grpc-js on this machine).
 * Reports its CPU, RSS, GC pauses and loop delay per phase to the primary.
 */
import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Socket } from 'node:net';
import { LOADER_OPTIONS } from '../../src/api/index.js';
import { decodeEventBatch } from '../../src/events/decode/index.js';
import { embeddedConfig, startEmbedded } from '../../src/service/embedded.js';
import { rng } from '../harness.js';
import { watchPauses } from '../suites/grpc.js';
import { BENCH_CANDIDATES, indexResidentPrompts } from '../support/resident-prompts.js';
import { ingestGenerator } from './ingest-load.js';

const mode = process.env.SPIKE_MODE ?? 'fed';
const port = Number(process.env.SPIKE_PORT);
const send = (m: object) => process.send!(m);

let blocksStored = () => 0;
let stopIngest = () => {};
let stopServer: () => Promise<void>;

if (mode === 'threads') {
  const { startThreads } = await import('./shape-a-main.js');
  const t = await startThreads(port);
  stopServer = () => t.stop();
} else if (mode === 'noop') {
  const def = loadSync('kvindexer/v1/kvindexer.proto', LOADER_OPTIONS);
  const score = (def['kvindexer.v1.KvIndexer'] as ServiceDefinition).Score;
  const reply = score.responseSerialize({
    totalBlocks: 64,
    scores: Array.from({ length: 16 }, (_, i) => ({
      endpoint: `10.1.0.${i + 1}:8000`,
      matchedBlocks: 10,
      weighted: 10,
      normalized: 0.15,
      blocksByTier: { GPU: 10 },
    })),
  });
  const raw = (b: Buffer) => b;
  const server = new Server();
  server.addService(
    { Score: { ...score, requestDeserialize: raw, responseSerialize: raw } },
    { Score: (_call: unknown, cb: (e: null, r: Buffer) => void) => cb(null, reply) },
  );
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  stopServer = async () => void server.forceShutdown();
} else {
  const embedded = await startEmbedded(
    embeddedConfig({ zmq: { addresses: [] }, api: { grpcAddress: `127.0.0.1:${port}` } }),
  );
  const { service } = embedded;
  const random = rng(5);
  indexResidentPrompts(embedded, random);
  blocksStored = () => service.ingestor.counters.blocksStored;
  stopServer = () => embedded.stop();
  if (mode === 'inproc') {
    // The grpc suite's generator, its ring filled before measuring, then 100k blocks/s (or SPIKE_INGEST_RATE).
    const gen = ingestGenerator(BENCH_CANDIDATES, random);
    const apply = (endpoint: string, events: Parameters<typeof service.ingestor.applySync>[2]) =>
      service.ingestor.applySync(endpoint, 'model', events);
    gen.fill(apply);
    const slice = Number(process.env.SPIKE_INGEST_SLICE ?? 0) || undefined;
    stopIngest = gen.start(apply, Number(process.env.SPIKE_INGEST_RATE ?? 100_000), slice);
  } else {
    // Raw batches from the primary on fd 4 (a pipe of its own, so that cluster's control messages, which hand over
    // the accepted connections, never queue behind them): [u32 length][u8 endpoint index][payload]…
    const pipe = new Socket({ fd: 4, readable: true, writable: false });
    pipe.on('error', () => undefined);
    let rest: Buffer | null = null;
    pipe.on('data', (chunk: Buffer) => {
      const buf = rest ? Buffer.concat([rest, chunk]) : chunk;
      let at = 0;
      while (buf.length - at >= 5) {
        const len = buf.readUInt32LE(at);
        if (buf.length - at < 5 + len) break;
        const endpoint = BENCH_CANDIDATES[buf[at + 4]];
        const batch = decodeEventBatch(buf.subarray(at + 5, at + 5 + len), 'vllm');
        service.ingestor.applySync(endpoint, 'model', batch.events);
        at += 5 + len;
      }
      rest = at === buf.length ? null : buf.subarray(at);
    });
    process.on('message', (m: { type: string }) => {
      if (m.type === 'sync') send({ type: 'synced' });
    });
  }
}

let cpu = process.cpuUsage();
let started = performance.now();
let pauses = watchPauses();
process.on('message', async (m: { type: string }) => {
  if (m.type === 'mark') {
    pauses.stop();
    cpu = process.cpuUsage();
    started = performance.now();
    pauses = watchPauses();
    send({ type: 'marked', blocksStored: blocksStored() });
  } else if (m.type === 'report') {
    const used = process.cpuUsage(cpu);
    const seconds = (performance.now() - started) / 1000;
    send({
      type: 'report',
      pid: process.pid,
      cpuCores: (used.user + used.system) / 1e6 / seconds,
      rssMb: process.memoryUsage().rss / 2 ** 20,
      blocksStored: blocksStored(),
      ...pauses.stop(),
    });
    pauses = watchPauses();
  } else if (m.type === 'stop') {
    stopIngest();
    await stopServer();
    process.exit(0);
  }
});
send({ type: 'ready' });
