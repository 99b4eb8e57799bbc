import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Worker } from 'node:worker_threads';
import { LOADER_OPTIONS } from '../../src/api/index.js';
import { startApi } from '../../src/cli/start-api.js';
import { startService } from '../../src/cli/serve.js';
import type { BlockStoredEvent } from '../../src/events/types.js';
import { BlockHasher } from '../../src/keys/index.js';
import { ConfigSchema, createLogger } from '../../src/ops/index.js';
import { percentile, randomKey, realisticTokens, rng, type Suite } from '../harness.js';

const CANDIDATES = 16;
const PROMPT_TOKENS = 1024;
/** Calls in flight (closed loop), as from a few picker replicas: latency ≈ CONCURRENCY / throughput. */
const CONCURRENCY = 16;

/**
 * gRPC Score (token ids in, 16 candidates) under load while the same process ingests 100k blocks/s; the client runs
 * in a worker thread with CONCURRENCY calls in flight.
 */
export const grpcSuite: Suite = {
  name: 'grpc',
  description: 'gRPC Score (tokens in, 16 candidates) while ingesting 100k blocks/s',
  async run({ quick }) {
    const config = ConfigSchema.parse({
      zmq: { addresses: ['tcp://127.0.0.1:*'] },
      api: { grpcAddress: '127.0.0.1:0' },
      metrics: { host: '127.0.0.1', port: 0 },
      log: { level: 'silent', statsIntervalSeconds: 0 },
    });
    const log = createLogger('silent');
    const service = await startService(config, log);
    const api = await startApi(service, config, log);
    const hasher = new BlockHasher(config.keys);
    const random = rng(5);
    const endpoints = Array.from({ length: CANDIDATES }, (_, i) => `10.1.0.${i + 1}:8000`);

    // Resident prompts: 64 prompts of 1,024 tokens, each on 4 of the 16 endpoints.
    const prompts = Array.from({ length: 64 }, () => Array.from(realisticTokens(PROMPT_TOKENS, random)));
    prompts.forEach((tokens, p) => {
      const keys = hasher.keysFor('model', tokens);
      for (let k = 0; k < 4; k++) service.index.add(endpoints[(p + k * 4) % CANDIDATES], 'GPU', keys);
    });
    const requests = prompts.map((tokens) => ({ model: 'model', tokens: { tokenIds: tokens }, candidates: endpoints }));

    // Background ingest at 100k blocks/s: every 10 ms, 1,000 blocks in events of 16 (token arrays generated up front,
    // so the timer costs the server what applying events costs, not the benchmark's own generation).
    const tokenPool = Array.from({ length: 64 }, () => realisticTokens(256, random));
    let tick = 0;
    const ingestTimer = setInterval(() => {
      for (let e = 0; e < 1000 / 16; e++) {
        const hashes = new BigUint64Array(16);
        for (let b = 0; b < 16; b++) hashes[b] = randomKey(random);
        const ev: BlockStoredEvent = {
          type: 'BlockStored', blockHashes: hashes, parentBlockHash: null, tokenIds: tokenPool[tick++ % tokenPool.length],
          blockSize: 16, loraId: null, medium: 'GPU', loraName: null, extraKeys: null, groupIdx: null,
          kvCacheSpecKind: null, kvCacheSpecSlidingWindow: null, cacheSalt: null,
        };
        service.ingestor.applySync(endpoints[e % CANDIDATES], 'model', [ev]);
      }
    }, 10);

    const seconds = quick ? 2 : 10;
    const result = await load(`127.0.0.1:${api.grpcPort}`, seconds, requests);
    clearInterval(ingestTimer);
    const ingested = service.ingestor.counters.blocksStored;
    await api.stop();
    await service.stop();
    const ceiling = await noopCeiling(quick ? 2 : 5, requests);
    return {
      parameters: { seconds, concurrency: CONCURRENCY, candidates: CANDIDATES, promptTokens: PROMPT_TOKENS, backgroundBlocksPerSecond: 100_000 },
      figures: {
        requestsPerSecond: { value: result.latencies.length / result.elapsed, unit: 'req/s', goal: '≥ 5000' },
        p50: { value: percentile(result.latencies, 50), unit: 'ms' },
        p99: { value: percentile(result.latencies, 99), unit: 'ms', goal: '≤ 5' },
        errors: { value: result.errors, unit: 'calls' },
        noopHandlerRequestsPerSecond: { value: ceiling.latencies.length / ceiling.elapsed, unit: 'req/s' },
        noopHandlerP99: { value: percentile(ceiling.latencies, 99), unit: 'ms' },
        blocksIngestedDuringRun: { value: ingested, unit: 'blocks' },
      },
    };
  },
};

type LoadResult = { latencies: number[]; errors: number; elapsed: number };

/** Runs the load client (a worker thread) against a server. */
function load(address: string, seconds: number, requests: object[]): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./grpc-load-client.mjs', import.meta.url), {
      workerData: { address, seconds, concurrency: CONCURRENCY, requests },
    });
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

/**
 * The same client against a Score handler that does no work (raw request bytes in, a fixed reply out): what grpc-js
 * and this machine allow at all, so that the service's figures can be read against it.
 */
async function noopCeiling(seconds: number, requests: object[]): Promise<LoadResult> {
  const def = loadSync('kvindexer/v1/kvindexer.proto', LOADER_OPTIONS);
  const score = (def['kvindexer.v1.KvIndexer'] as ServiceDefinition).Score;
  const reply = score.responseSerialize({
    totalBlocks: 64,
    scores: Array.from({ length: CANDIDATES }, (_, i) => ({ endpoint: `10.1.0.${i + 1}:8000`, matchedBlocks: 10, weighted: 10, normalized: 0.15, blocksByTier: { GPU: 10 } })),
  });
  const raw = (b: Buffer) => b;
  const server = new Server();
  server.addService({ Score: { ...score, requestDeserialize: raw, responseSerialize: raw } }, { Score: (_call: unknown, cb: (e: null, r: Buffer) => void) => cb(null, reply) });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  try {
    return await load(`127.0.0.1:${port}`, seconds, requests);
  } finally {
    server.forceShutdown();
  }
}
