/**
 * Spike (issue 16): the main thread's GC with api.indexThread against the single loop, Score only (no ingest), same
 * load client as the grpc suite: closed loop (16 in flight) then open loop at 5,000/s, SECONDS each. Prints per shape
 * the main isolate's scavenges and mark-compacts (count, total, max) and the latency figures.
 *
 *   node --expose-gc --import tsx bench/spike/thread-gc.ts [single|thread]...
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { createLogger } from '../../src/ops/index.js';
import { embeddedConfig, startEmbedded } from '../../src/service/embedded.js';
import { startThreaded } from '../../src/service/start-threaded.js';
import { gc, realisticTokens, rng } from '../harness.js';
import { LoadClient } from '../suites/grpc.js';
import { BENCH_CANDIDATES } from '../support/resident-prompts.js';

const SECONDS = Number(process.env.SPIKE_SECONDS ?? 5);

function gcWatch() {
  const kinds = new Map<string, { n: number; total: number; max: number }>();
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail: { kind: number } }).detail.kind;
      const name =
        kind === constants.NODE_PERFORMANCE_GC_MINOR
          ? 'minor'
          : kind === constants.NODE_PERFORMANCE_GC_MAJOR
            ? 'major'
            : 'other';
      const k = kinds.get(name) ?? { n: 0, total: 0, max: 0 };
      k.n++;
      k.total += e.duration;
      k.max = Math.max(k.max, e.duration);
      kinds.set(name, k);
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  return () => {
    obs.disconnect();
    return Object.fromEntries(
      [...kinds].map(([k, v]) => [
        k,
        `${v.n}× total ${v.total.toFixed(0)} ms max ${v.max.toFixed(1)} ms avg ${(v.total / v.n).toFixed(2)}`,
      ]),
    );
  };
}

const random = rng(7);
const requests = Array.from({ length: 64 }, () => ({
  model: 'model',
  tokens: { tokenIds: Array.from(realisticTokens(1024, random)) },
  candidates: BENCH_CANDIDATES,
}));
const client = await LoadClient.start();
try {
  for (const shape of process.argv.slice(2)) {
    gc();
    const config = embeddedConfig({ api: { indexThread: shape === 'thread' } });
    const served =
      shape === 'thread'
        ? await startThreaded(config, createLogger('silent'))
        : await startEmbedded(config).then((e) => ({ grpcPort: e.api.grpcPort, stop: () => e.stop() }));
    try {
      await client.setup(`127.0.0.1:${served.grpcPort}`, requests);
      await client.run({ type: 'closed', seconds: 2, concurrency: 16 });
      let cpu = process.cpuUsage();
      let stop = gcWatch();
      const closed = await client.run({ type: 'closed', seconds: SECONDS, concurrency: 16 });
      const closedCpu = process.cpuUsage(cpu);
      const closedGc = stop();
      cpu = process.cpuUsage();
      stop = gcWatch();
      const open = await client.run({ type: 'open', seconds: SECONDS, rate: 5_000 });
      const openCpu = process.cpuUsage(cpu);
      const openGc = stop();
      const perCall = (u: NodeJS.CpuUsage, n: number) => (((u.user + u.system) / n) | 0) + ' µs';
      console.log(
        JSON.stringify(
          {
            shape,
            closed: {
              rps: closed.requestsPerSecond | 0,
              cpu: perCall(closedCpu, closed.calls),
              p99: closed.p99.toFixed(1),
              gc: closedGc,
            },
            open: {
              p50: open.p50.toFixed(1),
              p99: open.p99.toFixed(1),
              p999: open.p999.toFixed(1),
              cpu: perCall(openCpu, open.calls),
              gc: openGc,
              errors: open.errors,
            },
          },
          null,
          1,
        ),
      );
      await client.close();
    } finally {
      await served.stop();
    }
  }
} finally {
  client.exit();
}
