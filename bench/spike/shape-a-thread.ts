/** A serving thread of bench/spike/shape-a-main.ts: ScoreRequest bytes in, ScoreResponse bytes out. */
import { loadSync } from '@grpc/proto-loader';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { parentPort, workerData } from 'node:worker_threads';
import { LOADER_OPTIONS } from '../../src/api/index.js';
import type { ScoreRequestMsg } from '../../src/api/messages.js';
import { decodeScoreRequest } from '../../src/api/wire/score-request.js';
import { encodeScoreResponse } from '../../src/api/wire/score-response.js';
import { embeddedConfig, startEmbedded } from '../../src/service/embedded.js';
import { rng } from '../harness.js';
import { BENCH_CANDIDATES, indexResidentPrompts } from '../support/resident-prompts.js';
import { ingestGenerator } from './ingest-load.js';

const port = parentPort!;
const def = loadSync('kvindexer/v1/kvindexer.proto', LOADER_OPTIONS);
const method = (def['kvindexer.v1.KvIndexer'] as ServiceDefinition).Score;
const { work, ingestRate } = workerData as { work: string; ingestRate: number };

if (work === 'echo') {
  const reply = method.responseSerialize({
    totalBlocks: 64,
    scores: Array.from({ length: 16 }, (_, i) => ({
      endpoint: `10.1.0.${i + 1}:8000`,
      matchedBlocks: 10,
      weighted: 10,
      normalized: 0.15,
      blocksByTier: { GPU: 10 },
    })),
  }) as Buffer;
  port.on('message', (m: { id: number }) => {
    const out = new Uint8Array(reply);
    port.postMessage({ id: m.id, reply: out }, [out.buffer]);
  });
} else {
  const embedded = await startEmbedded(embeddedConfig({ zmq: { addresses: [] } }));
  const { service, api } = embedded;
  const random = rng(5);
  indexResidentPrompts(embedded, random);
  const gen = ingestGenerator(BENCH_CANDIDATES, random);
  const apply = (endpoint: string, events: Parameters<typeof service.ingestor.applySync>[2]) =>
    service.ingestor.applySync(endpoint, 'model', events);
  gen.fill(apply);
  if (ingestRate > 0) gen.start(apply, ingestRate);
  port.on('message', (m: { id: number; request: Uint8Array }) => {
    const req = decodeScoreRequest(
      Buffer.from(m.request.buffer, m.request.byteOffset, m.request.byteLength),
      method.requestDeserialize,
    );
    api.api.score(req as ScoreRequestMsg).then(
      (res) => {
        // A copy of its own, transferred: the encoder's buffer may be a slice of Node's shared pool.
        const out = new Uint8Array(encodeScoreResponse(res));
        port.postMessage({ id: m.id, reply: out }, [out.buffer]);
      },
      (err: Error) => port.postMessage({ id: m.id, error: err.message }),
    );
  });
}
port.postMessage({ type: 'ready' });
