// Worker thread of the gRPC benchmark (plain JS: worker entry files do not go through the TypeScript loader).
// Keeps `concurrency` Score calls in flight for `seconds` and reports latencies, apart from the server's event loop.
import { credentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';

const { address, seconds, concurrency, requests } = workerData;
const protoDir = fileURLToPath(new URL('../../proto/', import.meta.url));
const def = loadSync('kvindexer/v1/kvindexer.proto', { keepCase: false, longs: String, defaults: true, oneofs: true, includeDirs: [protoDir] });
const Client = loadPackageDefinition(def).kvindexer.v1.KvIndexer;
const client = new Client(address, credentials.createInsecure());
const score = (req) =>
  new Promise((resolve, reject) => client.Score(req, { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res))));

const latencies = [];
let errors = 0;
let next = 0;
await score(requests[0]);
const end = Date.now() + seconds * 1000;
const started = Date.now();
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (Date.now() < end) {
      const t0 = process.hrtime.bigint();
      try {
        await score(requests[next++ % requests.length]);
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
