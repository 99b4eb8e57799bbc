import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PhaseResult } from '../suites/grpc.js';

/** Connections and calls in flight of the grpc suite's closed loop (h2load's -c, and -m per connection). */
export interface H2loadShape {
  connections: number;
  concurrency: number;
}

/** Starts the V8 profiler in this process; the returned function stops it and gives the profile. */
export async function startProfile(): Promise<() => Promise<object>> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result))),
    );
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  return async () => {
    const { profile } = (await post('Profiler.stop')) as { profile: object };
    session.disconnect();
    return profile;
  };
}

/**
 * Cross-check of the closed-loop figure with a load generator written in C: h2load (Debian's nghttp2-client) POSTs
 * the same gRPC frame over `shape.connections` connections, `shape.concurrency` calls in flight, for `seconds`; latencies come from
 * its per-request log. h2load checks only the HTTP status, so the DATA bytes it received are compared with the
 * expected response (`responseBytes` per call, gRPC prefix included; an error reply has none). Null when h2load is
 * not installed.
 */
export async function h2loadClosed(
  address: string,
  requestBytes: Buffer,
  responseBytes: number,
  seconds: number,
  shape: H2loadShape,
): Promise<PhaseResult | null> {
  const dir = mkdtempSync(join(tmpdir(), 'grpc-bench-'));
  try {
    const body = join(dir, 'request.bin');
    const log = join(dir, 'requests.log');
    const frame = Buffer.alloc(5 + requestBytes.length);
    frame.writeUInt32BE(requestBytes.length, 1);
    requestBytes.copy(frame, 5);
    writeFileSync(body, frame);
    const args = [
      '-D',
      String(seconds),
      '-c',
      String(shape.connections),
      '-m',
      String(shape.concurrency / shape.connections),
      '-d',
      body,
      '-H',
      'content-type: application/grpc',
      '-H',
      'te: trailers',
      '--log-file',
      log,
      `http://${address}/kvindexer.v1.KvIndexer/Score`,
    ];
    const out = await new Promise<string | null>((resolve, reject) => {
      const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? resolve(null) : reject(err)));
      child.on('close', (code) =>
        code === 0 ? resolve(text) : reject(new Error(`h2load exited with ${code}: ${text}`)),
      );
    });
    if (out === null) return null;
    if (process.env.GRPC_BENCH_VERBOSE) console.log(out);
    const done = Number(/(\d+) done/.exec(out)?.[1] ?? NaN);
    const failed = Number(/(\d+) failed/.exec(out)?.[1] ?? NaN) + Number(/(\d+) errored/.exec(out)?.[1] ?? NaN);
    const dataBytes = Number(/\((\d+)\) data/.exec(out)?.[1] ?? NaN);
    // Calls cut at the end of the run may leave a few responses partial: the check allows 1 %.
    if (!(Math.abs(dataBytes / done - responseBytes) <= 0.01 * responseBytes)) {
      throw new Error(`h2load: ${dataBytes} response bytes for ${done} calls, expected ${responseBytes} per call`);
    }
    const latencies = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((line) => Number(line.split('\t')[2]) / 1000);
    const sorted = Float64Array.from(latencies).sort();
    const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
    return {
      calls: latencies.length,
      errors: failed,
      seconds,
      requestsPerSecond: latencies.length / seconds,
      p50: pct(50),
      p90: pct(90),
      p99: pct(99),
      p999: pct(99.9),
      max: sorted[sorted.length - 1],
      clientCpuCores: NaN,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
