import type {
  GrpcServer,
  HealthService,
  IndexerApi,
  Operations,
  PromptFrontend,
  SelectApi,
  Speculate,
} from '../api/index.js';
import { Metrics, type Config, type Logger } from '../ops/index.js';
import type { InflightLedger, LoadSource } from '../scoring/load/index.js';
import type { LoadScraping } from '../scoring/index.js';
import { createApiCore, VERSION } from './api-core.js';
import { startFront } from './api-front.js';
import type { RunningService } from './start-service.js';
import { watchAvailability } from './write-path-metrics.js';

export { DRAINING_LOG, GRPC_DRAIN_MS, SERVICE_NAMES } from './api-front.js';

export interface RunningApi {
  api: IndexerApi;
  select: SelectApi;
  grpc: GrpcServer;
  health: HealthService;
  metrics: Metrics;
  grpcPort: number;
  metricsPort: number;
  /** Load scraped from the endpoints' vLLM /metrics (a LoadSource for Select); null unless load.scrape.enabled. */
  load: LoadScraping | null;
  stop(): Promise<void>;
}

/**
 * Health names that follow the index backend (Redis) when it drops out. `index` always does. Readiness does only
 * when fail-open is off: with fail-open on, every replica shares the same Redis, so taking readiness away would take
 * every replica out of the Service at once, while each can still answer Score (zero scores flagged `degraded`; the
 * router's other scorers decide). See docs/operations.md, "Failure modes".
 */
export function backendFollowers(failOpen: boolean): string[] {
  return failOpen ? ['index'] : ['', 'readiness', 'index'];
}

/** Starts the gRPC API and the metrics endpoint in front of a running write path, all on this thread. */
export async function startApi(
  service: RunningService,
  config: Config,
  log: Logger,
  prompts: PromptFrontend | null = null,
  /** Scraped per-endpoint load for Select; absent = the service's own scraper (load.scrape), if it is on. */
  options: {
    loads?: LoadSource;
    /** false: no metrics server (a serving process; the primary serves /metrics from every process's registry). */
    serveMetrics?: boolean;
    /** Wraps the operations before they are served (a serving process replicates the writes to its peers). */
    wrapOperations?: (operations: Operations) => Operations;
    /** How the wrapped operations take requests: `bytes` = protobuf bytes in, bytes out (grpc-server.ts). */
    wire?: 'messages' | 'bytes';
    /** Select's in-flight ledger when another part holds it (a serving process: the primary's). */
    ledger?: InflightLedger;
    /** Where Select's speculative entries go (a serving process: every replica, through the primary). */
    speculate?: Speculate;
  } = {},
): Promise<RunningApi> {
  const metrics = new Metrics();
  const core = createApiCore(service, config, log, metrics, prompts, options);
  const operations = options.wrapOperations ? options.wrapOperations(core.operations) : core.operations;
  const front = await startFront({
    operations,
    config,
    log,
    metrics,
    serveMetrics: options.serveMetrics,
    wire: options.wire,
  });
  front.setServing(true);
  core.load?.start();
  // A remote index that drops out: `index` reports it; readiness follows only without fail-open (backendFollowers).
  const followers = backendFollowers(config.api.failOpen);
  const readiness = watchAvailability(service.index, (up) => {
    for (const name of followers) front.health.set(name, up ? 'SERVING' : 'NOT_SERVING');
  });
  // "API serving" is the service's line, with the ports an operator reaches; a serving process (no metrics server of
  // its own) logs its own start under another message, so the line is never read with a metrics port of 0.
  if (options.serveMetrics === false) log.info({ grpcPort: front.grpcPort }, 'serving process API up');
  else log.info({ grpcPort: front.grpcPort, metricsPort: front.metricsPort, version: VERSION }, 'API serving');

  return {
    api: core.api,
    select: core.select,
    grpc: front.grpc,
    health: front.health,
    metrics,
    grpcPort: front.grpcPort,
    metricsPort: front.metricsPort,
    load: core.load,
    async stop() {
      clearInterval(readiness);
      await core.load?.stop(); // aborts the scrapes in flight
      await front.stop();
    },
  };
}
