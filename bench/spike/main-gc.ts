/**
 * Spike (issue 16): the main thread's collections while Score runs open loop at 5,000/s and the feeder publishes
 * over ZMQ, in either shape of the service, to find where the open-loop tail comes from. Prints, per shape, the
 * latency figures, the main isolate's GC (minor and major: count, max pause) and the open phase's window in ms since
 * the process started, so that a run under `--trace-gc-nvp` can be summed over exactly that window (the first
 * isolate in the trace is the main thread; `promoted=` per scavenge, `pause=` and its parts per mark-compact):
 *
 *   SHAPE=thread|single RATE=100000 SECONDS=8 node --expose-gc [--trace-gc-nvp] --import tsx bench/spike/main-gc.ts
 */
import { createServer } from 'node:net';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { createLogger } from '../../src/ops/index.js';
import { embeddedConfig, startEmbedded } from '../../src/service/embedded.js';
import { startThreaded } from '../../src/service/start-threaded.js';
import { realisticTokens, rng } from '../harness.js';
import { LoadClient } from '../support/load-client.js';
import { BENCH_CANDIDATES, BENCH_PROMPT_TOKENS } from '../support/resident-prompts.js';
import { ZmqFeeder } from '../support/zmq-feeder.js';

const SHAPE = process.env.SHAPE === 'single' ? 'single' : 'thread';
const RATE = Number(process.env.RATE ?? 100_000);
const SECONDS = Number(process.env.SECONDS ?? 8);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const random = rng(5);
const prompts = Array.from({ length: 64 }, () => Array.from(realisticTokens(BENCH_PROMPT_TOKENS, random)));
const tokenPool = Array.from({ length: 64 }, () => Array.from(realisticTokens(256, random)));
const address = `tcp://127.0.0.1:${await freePort()}`;
const config = embeddedConfig({ api: { indexThread: SHAPE === 'thread' }, zmq: { addresses: [address] } });
const service =
  SHAPE === 'thread'
    ? await startThreaded(config, createLogger('silent'))
    : await startEmbedded(config).then((e) => ({ grpcPort: e.api.grpcPort, stop: () => e.stop() }));
const feeder = await ZmqFeeder.start();
const client = await LoadClient.start();
try {
  const residentBlocks = 16 * BENCH_CANDIDATES.length * 64;
  await feeder.setup({
    address,
    endpoints: BENCH_CANDIDATES,
    prompts,
    tokenPool,
    residentBlocks,
    blocksPerSecond: RATE,
    seed: 3,
  });
  await feeder.probe();
  await new Promise((r) => setTimeout(r, 1_000)); // ZMQ's slow joiner: the probes make sure the SUB is connected
  await feeder.probeStop();
  await feeder.resident();
  await feeder.fill();
  await feeder.startIngest();
  const requests = prompts.map((tokens) => ({
    model: 'model',
    tokens: { tokenIds: tokens },
    candidates: BENCH_CANDIDATES,
  }));
  await client.setup(`127.0.0.1:${service.grpcPort}`, requests);
  await client.run({ type: 'closed', seconds: 2, concurrency: 16 });
  const gc = { minor: { n: 0, maxMs: 0 }, major: { n: 0, maxMs: 0 } };
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const major = (e as unknown as { detail: { kind: number } }).detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR;
      const k = major ? gc.major : gc.minor;
      k.n++;
      k.maxMs = Math.max(k.maxMs, e.duration);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const from = performance.now();
  const open = await client.run({ type: 'open', seconds: SECONDS, rate: 5_000 });
  const to = performance.now();
  observer.disconnect();
  const round = (x: number) => Math.round(x * 100) / 100;
  console.log(
    JSON.stringify({
      shape: SHAPE,
      ingestBlocksPerSecond: RATE,
      open: { p50: round(open.p50), p99: round(open.p99), p999: round(open.p999), errors: open.errors },
      mainGc: {
        minor: { n: gc.minor.n, maxMs: round(gc.minor.maxMs) },
        major: { n: gc.major.n, maxMs: round(gc.major.maxMs) },
      },
      windowMs: [Math.round(from), Math.round(to)],
    }),
  );
  await feeder.stopIngest();
} finally {
  client.exit();
  await feeder.exit();
  await service.stop();
}
