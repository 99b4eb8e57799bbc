/**
 * Spike (issue 16), what shape A costs at the edge: the main thread terminates HTTP/2 (grpc-js, raw request bytes in,
 * raw response bytes out) and hands each Score call to one of SPIKE_THREADS worker threads over a MessagePort
 * (round robin), which decodes, scores and encodes it. SPIKE_THREAD_WORK=echo: the threads answer a fixed reply
 * (the dispatch's own cost, to be read against the no-op handler); otherwise each thread runs the service's Score
 * path on an index of its own with the grpc suite's ingest (a replica per thread: shape A's shared index is not built
 * here, only its dispatch is measured).
 */
import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Worker } from 'node:worker_threads';
import { LOADER_OPTIONS } from '../../src/api/index.js';

export async function startThreads(port: number) {
  const threads = Number(process.env.SPIKE_THREADS ?? 1);
  const work = process.env.SPIKE_THREAD_WORK ?? 'score';
  const workers = Array.from(
    { length: threads },
    () =>
      new Worker(new URL('./shape-a-thread-boot.mjs', import.meta.url), {
        workerData: { work, ingestRate: Number(process.env.SPIKE_INGEST_RATE ?? 100_000) },
      }),
  );
  await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
  const pending = new Map<number, (e: Error | null, r?: Buffer) => void>();
  let nextId = 1;
  type Reply = { id: number; reply?: Uint8Array; error?: string };
  const answer = (m: Reply) => {
    const cb = pending.get(m.id);
    if (!cb) return;
    pending.delete(m.id);
    if (m.error) cb(new Error(m.error));
    else cb(null, Buffer.from(m.reply!.buffer, m.reply!.byteOffset, m.reply!.byteLength));
  };
  for (const w of workers) {
    w.on('message', (m: Reply | { batch: Reply[] }) => {
      if ('batch' in m) for (const r of m.batch) answer(r);
      else answer(m);
    });
    // A crashed thread: its calls fail (UNAVAILABLE in a real server), a new one would replace it.
    w.on('error', () => undefined);
  }
  const def = loadSync('kvindexer/v1/kvindexer.proto', LOADER_OPTIONS);
  const score = (def['kvindexer.v1.KvIndexer'] as ServiceDefinition).Score;
  const raw = (b: Buffer) => b;
  const server = new Server();
  let rr = 0;
  // SPIKE_BATCH=1: the calls that arrive in one turn of the loop go to a thread in one message (one wake-up).
  const batching = process.env.SPIKE_BATCH === '1';
  const outbox = workers.map(() => ({
    batch: [] as { id: number; request: Uint8Array }[],
    transfer: [] as ArrayBuffer[],
  }));
  let flushScheduled = false;
  const flush = () => {
    flushScheduled = false;
    outbox.forEach((o, i) => {
      if (o.batch.length === 0) return;
      workers[i].postMessage({ batch: o.batch }, o.transfer);
      o.batch = [];
      o.transfer = [];
    });
  };
  server.addService(
    { Score: { ...score, requestDeserialize: raw, responseSerialize: raw } },
    {
      Score: (call: { request: Buffer }, cb: (e: Error | null, r?: Buffer) => void) => {
        const id = nextId++;
        pending.set(id, cb);
        // The request's bytes are copied (grpc-js's buffer may be a slice of a pooled one): ~1.5 KB per call.
        const request = new Uint8Array(call.request);
        const t = rr++ % workers.length;
        if (!batching) {
          workers[t].postMessage({ id, request }, [request.buffer]);
          return;
        }
        outbox[t].batch.push({ id, request });
        outbox[t].transfer.push(request.buffer);
        if (!flushScheduled) {
          flushScheduled = true;
          setImmediate(flush);
        }
      },
    },
  );
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    blocksStored: () => 0,
    async stop() {
      server.forceShutdown();
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
