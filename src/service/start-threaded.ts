import { Metrics, type Config, type Logger } from '../ops/index.js';
import { startFront, type ApiFront } from './api-front.js';
import { IndexThreadHost } from './index-thread-host.js';
import { VERSION } from './api-core.js';
import { backendFollowers } from './start-api.js';

/** The service with api.indexThread on: HTTP/2, health and /metrics here, everything else in the index thread. */
export interface ThreadedService {
  host: IndexThreadHost;
  front: ApiFront;
  grpcPort: number;
  metricsPort: number;
  /** Drains gRPC (health NOT_SERVING first), then stops the index thread (sockets, index, tokenizers). */
  stop(): Promise<void>;
}

/**
 * Starts the index thread (write path, prompts, API operations), then the front: gRPC with bytes passed through and
 * the metrics server, whose /metrics adds the thread's registry to this thread's (process, runtime and gRPC
 * connection series). Health follows the thread: NOT_SERVING while it is replaced, and the index backend as in
 * the single-thread service (backendFollowers). A failed start stops what started and throws.
 */
export async function startThreaded(config: Config, log: Logger): Promise<ThreadedService> {
  let front: ApiFront | null = null;
  let serving = false;
  let indexUp = true;
  let alive = true;
  const followers = backendFollowers(config.api.failOpen);
  const applyHealth = () => {
    if (!front) return;
    front.setServing(serving);
    if (serving && !indexUp) for (const name of followers) front.health.set(name, 'NOT_SERVING');
    front.health.set('liveness', alive ? 'SERVING' : 'NOT_SERVING');
  };
  const host = await IndexThreadHost.start(config, log, {
    serving: (up) => {
      serving = up;
      applyHealth();
    },
    index: (up) => {
      indexUp = up;
      applyHealth();
    },
    alive: (up) => {
      alive = up;
      applyHealth();
    },
  });
  const metrics = new Metrics('kv_indexer_', { api: false });
  metrics.counter(
    'kv_indexer_index_thread_restarts_total',
    'Attempts to start an index thread replacing one that exited unasked (each new thread starts with an empty index)',
    null,
    () => ({ '': host.restarts }),
  );
  try {
    front = await startFront({
      operations: host.operations(),
      config,
      log,
      metrics,
      wire: 'bytes',
      renderMetrics: async (own) => own + (await host.metricsText()),
    });
  } catch (err) {
    await host.stop().catch(() => undefined);
    throw err;
  }
  applyHealth();
  const started = front;
  log.info(
    { grpcPort: started.grpcPort, metricsPort: started.metricsPort, version: VERSION, indexThread: true },
    'API serving',
  );
  return {
    host,
    front: started,
    grpcPort: started.grpcPort,
    metricsPort: started.metricsPort,
    async stop() {
      await started.stop();
      await host.stop();
    },
  };
}
