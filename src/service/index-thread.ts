/**
 * The index thread's entry (api.indexThread): the write path (ZMQ → index), the prompt frontend and the API's
 * operations run here, on a loop of their own; the main thread (index-thread-host.ts) terminates HTTP/2 and hands
 * every call over as bytes. Nothing here listens on a network port but the ZMQ sockets.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { WireOperations, type Cancellation } from '../api/index.js';
import { closeOpenSockets } from '../events/index.js';
import { createLogger, Metrics, threadSchedstat, type Config } from '../ops/index.js';
import { createApiCore } from './api-core.js';
import { loadConfiguredModels, type PromptServiceFrontend } from './prompt-frontend.js';
import { startService, type RunningService } from './start-service.js';
import { describeStartFailure } from './startup-error.js';
import { RecordRing } from './record-ring.js';
import {
  asBuffer,
  ownCopy,
  readCall,
  writeFailure,
  writeReply,
  type FromIndexThread,
  type ThreadRings,
  type ToIndexThread,
} from './thread-protocol.js';
import { watchAvailability } from './write-path-metrics.js';

/** A call's cancellation here: its deadline, and a flag the main thread sets when the client goes away. */
class ThreadCancellation implements Cancellation {
  cancelled = false;
  constructor(readonly deadlineMs: number) {}
  get aborted(): boolean {
    return this.cancelled || Date.now() > this.deadlineMs;
  }
}

/**
 * A bug that escapes (an uncaught error or rejection) ends the thread, never the process: its ZMQ sockets are closed
 * first (zeromq.js would abort the process otherwise, events/open-sockets.ts), then the host fails the calls it held
 * UNAVAILABLE and starts a new thread.
 */
function endOnEscape(log: ReturnType<typeof createLogger>): void {
  const end = (err: unknown) => {
    log.fatal({ err: err instanceof Error ? (err.stack ?? err.message) : String(err) }, 'index thread: uncaught error');
    closeOpenSockets();
    process.exit(70);
  };
  process.on('uncaughtException', end);
  process.on('unhandledRejection', end);
}

/**
 * The index thread's own runtime on /metrics (the main thread's registry has the process's and its own): its event
 * loop's delay since the last scrape and its V8 heap, where ingest and Score compete.
 */
function registerThreadRuntime(metrics: Metrics): void {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  metrics.gauge(
    'kv_indexer_index_thread_event_loop_delay_seconds',
    'Event-loop delay of the index thread since the previous scrape (p50, p99, max)',
    'stat',
    () => {
      const out = { p50: delay.percentile(50) / 1e9, p99: delay.percentile(99) / 1e9, max: delay.max / 1e9 };
      delay.reset();
      return out;
    },
  );
  metrics.gauge('kv_indexer_index_thread_heap_used_bytes', 'V8 heap used by the index thread', null, () => ({
    '': getHeapStatistics().used_heap_size,
  }));
  // Linux only (absent elsewhere): how busy the thread is, and how long it was ready to run but waited for a CPU.
  // Together they tell a saturated thread from a starved one (issue 16: under a burst with reads on two vCPUs, the
  // ingest thread, the main thread, the client and the feeder want more than two cores).
  if (threadSchedstat() === null) return;
  metrics.counter(
    'kv_indexer_index_thread_cpu_seconds_total',
    'CPU time of the index thread (Linux schedstat)',
    null,
    () => ({ '': threadSchedstat()?.cpuSeconds ?? 0 }),
  );
  metrics.counter(
    'kv_indexer_index_thread_runqueue_wait_seconds_total',
    'Time the index thread was ready to run but waited for a CPU (Linux schedstat run delay)',
    null,
    () => ({ '': threadSchedstat()?.waitSeconds ?? 0 }),
  );
}

async function main(): Promise<void> {
  const port = parentPort!;
  const post = (m: FromIndexThread, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);
  const { config, rings } = workerData as { config: Config; rings: ThreadRings };
  const requests = RecordRing.attach(rings.requests);
  const replies = RecordRing.attach(rings.replies);
  const log = createLogger(config.log.level);
  endOnEscape(log);
  let prompts: PromptServiceFrontend | null = null;
  let service: RunningService | null = null;
  const metrics = new Metrics('kv_indexer_', { process: false });
  let core;
  try {
    prompts = await loadConfiguredModels(config, log);
    service = await startService(config, log);
    core = createApiCore(service, config, log, metrics, prompts);
  } catch (err) {
    await service?.stop().catch(() => undefined);
    await prompts?.close().catch(() => undefined);
    post({ t: 'failed', failure: describeStartFailure(err) });
    process.exit(1);
  }
  registerThreadRuntime(metrics);
  const wire = new WireOperations(core.operations, log);
  const running = new Map<number, ThreadCancellation>();
  core.load?.start();
  const availability = watchAvailability(service.index, (up) => post({ t: 'index', up }));
  const stop = async () => {
    clearInterval(availability);
    for (const c of running.values()) c.cancelled = true;
    await core.load?.stop();
    await service.stop();
    await prompts?.close();
    // Everything is closed; a native handle (a ZMQ context) may still hold the loop: the thread ends here.
    process.exit(0);
  };
  /** Runs one call; its reply goes back as a record, or as a message when it does not fit in the ring. */
  const run = (id: number, path: string, deadlineMs: number, caller: string, body: Buffer) => {
    const cancellation = new ThreadCancellation(deadlineMs);
    running.set(id, cancellation);
    void wire.call(path, body, cancellation, caller).then((reply) => {
      running.delete(id);
      if ('bytes' in reply) {
        if (!writeReply(replies, id, reply.bytes)) {
          const own = ownCopy(reply.bytes);
          post({ t: 'reply', id, bytes: own }, [own.buffer as ArrayBuffer]);
        }
      } else if (!writeFailure(replies, id, reply.code, reply.details)) {
        post({ t: 'reply', id, code: reply.code, details: reply.details });
      }
    });
  };
  requests.consume((at, length) => {
    const c = readCall(requests, at, length);
    run(c.id, c.path, c.deadlineMs, c.caller, c.body);
  });
  port.on('message', (m: ToIndexThread) => {
    switch (m.t) {
      case 'call': // one that did not fit in the ring
        run(m.id, m.path, m.deadlineMs, m.caller, asBuffer(m.bytes));
        break;
      case 'cancel': {
        const c = running.get(m.id);
        if (c) c.cancelled = true;
        break;
      }
      case 'metrics':
        metrics.registry.metrics().then(
          (text) => post({ t: 'metrics', id: m.id, text }),
          (err: unknown) => post({ t: 'metrics', id: m.id, text: `# index thread metrics failed: ${String(err)}\n` }),
        );
        break;
      case 'crash':
        setImmediate(() => {
          throw new Error('index thread crash requested (a test of recovery)');
        });
        break;
      case 'stop':
        stop().catch((err: unknown) => {
          log.error({ err: String(err) }, 'index thread: stop failed');
          process.exit(1);
        });
        break;
    }
  });
  post({ t: 'ready' });
}

await main();
