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

type Reply = { id: number; reply?: Uint8Array; error?: string };
type Request = { id: number; request: Uint8Array };
/** Replies of one turn of this thread's loop go back in one message when the request came in a batch. */
let replies: Reply[] = [];
let transfer: ArrayBuffer[] = [];
let flushScheduled = false;
function reply(r: Reply, batched: boolean): void {
  if (!batched) {
    port.postMessage(r, r.reply ? [r.reply.buffer as ArrayBuffer] : []);
    return;
  }
  replies.push(r);
  if (r.reply) transfer.push(r.reply.buffer as ArrayBuffer);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(() => {
      flushScheduled = false;
      port.postMessage({ batch: replies }, transfer);
      replies = [];
      transfer = [];
    });
  }
}
/** Calls `handle` for each request of a message (one request, or a batch of them). */
function onRequests(handle: (r: Request, batched: boolean) => void): void {
  port.on('message', (m: Request | { batch: Request[] }) => {
    if ('batch' in m) for (const r of m.batch) handle(r, true);
    else handle(m, false);
  });
}

if (work === 'echo') {
  const fixed = method.responseSerialize({
    totalBlocks: 64,
    scores: Array.from({ length: 16 }, (_, i) => ({
      endpoint: `10.1.0.${i + 1}:8000`,
      matchedBlocks: 10,
      weighted: 10,
      normalized: 0.15,
      blocksByTier: { GPU: 10 },
    })),
  }) as Buffer;
  onRequests((m, batched) => reply({ id: m.id, reply: new Uint8Array(fixed) }, batched));
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
  onRequests((m, batched) => {
    const req = decodeScoreRequest(
      Buffer.from(m.request.buffer, m.request.byteOffset, m.request.byteLength),
      method.requestDeserialize,
    );
    api.api.score(req as ScoreRequestMsg).then(
      (res) => {
        // A copy of its own, transferred: the encoder's buffer may be a slice of Node's shared pool.
        reply({ id: m.id, reply: new Uint8Array(encodeScoreResponse(res)) }, batched);
      },
      (err: Error) => reply({ id: m.id, error: err.message }, batched),
    );
  });
}
port.postMessage({ type: 'ready' });
