// Worker thread of the gRPC benchmark (plain JS: worker entry files do not go through the TypeScript loader).
// Keeps `concurrency` Score calls in flight for `seconds` and reports latencies, apart from the server's event loop.
// Requests are serialised once and responses are not decoded, so the client costs little next to the server.
import { credentials, makeGenericClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';

const { address, seconds, concurrency, requests } = workerData;
const protoDir = fileURLToPath(new URL('../../proto/', import.meta.url));
const def = loadSync('kvindexer/v1/kvindexer.proto', { keepCase: false, longs: String, defaults: true, oneofs: true, includeDirs: [protoDir] });
const score = def['kvindexer.v1.KvIndexer'].Score;
const encoded = requests.map((r) => score.requestSerialize(r));
const identity = (b) => b;
const Raw = makeGenericClientConstructor(
  { Score: { path: score.path, requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } },
  'RawKvIndexer',
);
const client = new Raw(address, credentials.createInsecure());
const call = (buf) =>
  new Promise((resolve, reject) => client.Score(buf, { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res))));

const latencies = [];
let errors = 0;
let next = 0;
// Check that the server answers the first request with a real response, then measure.
const first = score.responseDeserialize(await call(encoded[0]));
if (!Array.isArray(first.scores) || first.scores.length === 0) throw new Error('grpc bench: unexpected Score response');
const end = Date.now() + seconds * 1000;
const started = Date.now();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (Date.now() < end) {
      const t0 = process.hrtime.bigint();
      try {
        await call(encoded[next++ % encoded.length]);
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch {
        errors++;
      }
    }
  }),
);
const elapsed = (Date.now() - started) / 1000;
client.close();
parentPort.postMessage({ latencies, errors, elapsed });
