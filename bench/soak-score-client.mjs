// Score load of the soak (bench/soak.ts): a CHILD PROCESS, so that the soaked service's RSS, heap and GC are its own
// and the client's memory does not count towards the leak verdict. Plain JS, started with child_process.fork.
//
// Keeps `concurrency` Score calls in flight for `seconds` over Node's raw http2 (pre-serialised gRPC frames, responses
// not decoded: only grpc-status is checked). Memory stays constant however long it runs: latencies go into a
// fixed histogram (10 µs buckets up to 2 s, one overflow bucket), not into an array.
//   parent → { type: 'run', address, requests, seconds, concurrency }
//   child  → { type: 'result', calls, errors, firstError, seconds, p50Ms, p99Ms, maxMs } | { type: 'error', message }
import { connect } from 'node:http2';
import { grpcFrame, SCORE_HEADERS, score } from './raw-score.mjs';

const BUCKET_MS = 0.01;
const BUCKETS = 200_000; // 2 s; slower calls land in the last bucket

function run({ address, requests, seconds, concurrency }) {
  const frames = requests.map((r) => grpcFrame(score.requestSerialize(r)));
  const sessions = Array.from({ length: concurrency }, () => connect(`http://${address}`));
  for (const s of sessions) s.on('error', () => undefined); // a failed session fails its calls, counted below
  const histogram = new Uint32Array(BUCKETS + 1);
  let calls = 0;
  let errors = 0;
  let firstError = null;
  let maxMs = 0;
  let next = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  return new Promise((resolve) => {
    let running = concurrency;
    const one = (lane) => {
      const t0 = performance.now();
      let status = null;
      let message = '';
      const stream = sessions[lane].request(SCORE_HEADERS);
      stream.on('response', (h) => {
        if (h['grpc-status'] !== undefined) [status, message] = [h['grpc-status'], h['grpc-message'] ?? ''];
      });
      stream.on('trailers', (t) => ([status, message] = [t['grpc-status'], t['grpc-message'] ?? '']));
      stream.on('data', () => undefined);
      stream.on('error', (err) => (message = String(err)));
      stream.on('close', () => {
        const t1 = performance.now();
        const ms = t1 - t0;
        if (status === '0') {
          calls++;
          histogram[Math.min(BUCKETS, Math.floor(ms / BUCKET_MS))]++;
          if (ms > maxMs) maxMs = ms;
        } else {
          errors++;
          firstError ??= `grpc-status ${status}: ${decodeURIComponent(message)}`;
        }
        if (t1 < end) one(lane);
        else if (--running === 0) {
          for (const s of sessions) s.close();
          resolve({
            calls,
            errors,
            firstError,
            seconds: (t1 - started) / 1000,
            ...percentiles(histogram, calls),
            maxMs,
          });
        }
      });
      stream.end(frames[next++ % frames.length]);
    };
    for (let lane = 0; lane < concurrency; lane++) one(lane);
  });
}

function percentiles(histogram, count) {
  const at = (p) => {
    if (count === 0) return NaN;
    const rank = Math.ceil((p / 100) * count);
    let seen = 0;
    for (let i = 0; i < histogram.length; i++) {
      seen += histogram[i];
      if (seen >= rank) return (i + 1) * BUCKET_MS; // upper edge of the bucket
    }
    return NaN;
  };
  return { p50Ms: at(50), p99Ms: at(99) };
}

process.once('message', (msg) => {
  run(msg).then(
    (result) => process.send({ type: 'result', ...result }, () => process.disconnect()),
    (err) => process.send({ type: 'error', message: String(err?.stack ?? err) }, () => process.disconnect()),
  );
});
