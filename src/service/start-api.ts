import { readFileSync } from 'node:fs';
import {
  GrpcServer,
  GUARD_COUNTER_FAMILIES,
  HealthService,
  IndexerApi,
  type PromptFrontend,
  type SelectApi,
} from '../api/index.js';
import { RESIDENCY_COUNTER_FAMILIES } from '../index/index.js';
import { BlockHasher } from '../keys/index.js';
import { Metrics, startMetricsServer, type Config, type Logger } from '../ops/index.js';
import { TierWeights } from '../scoring/index.js';
import type { LoadSource } from '../scoring/load/index.js';
import { createSelect } from './start-select.js';
import { TransportFleet } from './transport-fleet.js';
import type { RunningService } from './start-service.js';
import { atSetting } from './startup-error.js';
import { grpcOptions } from './grpc-options.js';
import { UnknownModelWarnings } from './unknown-model-warnings.js';
import { registerWritePathGauges, watchAvailability } from './write-path-metrics.js';
import { createLoadScraper } from './load-scrape.js';
import type { LoadScraping } from '../scoring/index.js';

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

/** How long shutdown waits for in-flight gRPC calls before cancelling them. */
export const GRPC_DRAIN_MS = 5_000;
/** Logged when new gRPC calls start being refused (UNAVAILABLE) and the calls in flight are drained. */
export const DRAINING_LOG = 'gRPC draining: new calls refused, calls in flight finishing';

export const SERVICE_NAMES = [
  '',
  'liveness',
  'readiness',
  'index',
  'kvindexer.v1.KvIndexer',
  'indexer.v1.IndexerService',
];

/**
 * Health names that follow the index backend (Redis) when it drops out. `index` always does. Readiness does only
 * when fail-open is off: with fail-open on, every replica shares the same Redis, so taking readiness away would take
 * every replica out of the Service at once, while each can still answer Score (zero scores flagged `degraded`; the
 * router's other scorers decide). See docs/operations.md, "Failure modes".
 */
export function backendFollowers(failOpen: boolean): string[] {
  return failOpen ? ['index'] : ['', 'readiness', 'index'];
}

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** Starts the gRPC API and the metrics endpoint in front of a running write path. */
export async function startApi(
  service: RunningService,
  config: Config,
  log: Logger,
  prompts: PromptFrontend | null = null,
  /** Scraped per-endpoint load for Select; absent = the service's own scraper (load.scrape), if it is on. */
  options: { loads?: LoadSource } = {},
): Promise<RunningApi> {
  const metrics = new Metrics();
  const health = new HealthService();
  for (const name of SERVICE_NAMES) health.set(name, 'NOT_SERVING');
  health.set('liveness', 'SERVING');

  const { index, ingestor, pipeline } = service;
  const unknownModels = new UnknownModelWarnings(log);
  const hasher = new BlockHasher(config.keys);
  const weights = new TierWeights({ weights: config.scoring.tierWeights, unknown: config.scoring.unknownTierWeight });
  const load = createLoadScraper(service.transport, config, metrics, log);
  const api = new IndexerApi({
    index,
    tiers: index.tiers,
    hasher,
    weights,
    prompts,
    fleet: new TransportFleet(service.transport, index, config.endpoints.leaseTtlMs === 0, load),
    limits: config.api,
    version: VERSION,
    ingestStats: () => ({
      eventsReceived: pipeline.counters.messages,
      blocksStored: ingestor.counters.blocksStored,
      blocksRemoved: ingestor.counters.blocksRemoved,
      groupWithoutKind: ingestor.counters.groupWithoutKind,
      boundDrops: ingestor.counters.boundDrops,
      keyOnlyRemovals: ingestor.counters.keyOnlyRemovals,
    }),
    observer: {
      scored: (kind, seconds, total, best) => metrics.observeScore(kind, seconds, total, best),
      prepared: (kind, seconds) => metrics.observePrepare(kind, seconds),
      degraded: (reason) => metrics.countDegraded(reason),
      items: (items) => metrics.countItems(items),
      unknownModel: (model) => unknownModels.count(model),
    },
    residency: service.residency,
  });
  metrics.counter(
    'kv_indexer_score_unknown_model_total',
    'Score calls naming a model no followed endpoint has published (ScoreResponse.unknown_model)',
    null,
    () => ({ '': unknownModels.total }),
  );
  registerWritePathGauges(metrics, service);
  const residency = service.residency;
  metrics.gauge(
    'kv_indexer_encoder_residency_entries',
    'Image identifiers held by encoder residency over all endpoints (this replica)',
    null,
    () => ({ '': residency.entries }),
  );
  metrics.counterFamilies('kv_indexer_', RESIDENCY_COUNTER_FAMILIES, () => residency);
  const tokenizer = prompts?.tokenizerStats?.bind(prompts);
  if (tokenizer) {
    metrics.gauge('kv_indexer_tokenizer_workers', 'Tokenizer worker threads', null, () => ({
      '': tokenizer().workers,
    }));
    metrics.counter(
      'kv_indexer_tokenizer_dropped_total',
      'Tokenizations dropped or stopped, by reason',
      'reason',
      () => {
        const t = tokenizer();
        return {
          cancelled_queued: t.cancelledQueued,
          cancelled_running: t.cancelledRunning,
          over_budget: t.overBudget,
        };
      },
    );
  }

  const select = createSelect({
    service,
    config,
    api,
    hasher,
    weights,
    prompts,
    metrics,
    loads: options.loads ?? load ?? undefined,
  });
  const grpc = new GrpcServer(api, health, grpcOptions(config), log, select);
  const grpcPort = await atSetting('api.grpcAddress', config.api.grpcAddress, () => grpc.start());
  metrics.gauge('kv_indexer_grpc_connections', 'Open gRPC (HTTP/2) connections', null, async () => ({
    '': await grpc.connections(),
  }));
  metrics.counterFamilies('kv_indexer_', GUARD_COUNTER_FAMILIES, () => grpc.guard);
  metrics.gauge(
    'kv_indexer_grpc_open_calls',
    'gRPC calls (HTTP/2 streams) open now over all connections',
    null,
    () => ({ '': grpc.guard.openCalls }),
  );
  const metricsServer = await atSetting('metrics.port', `${config.metrics.host}:${config.metrics.port}`, () =>
    startMetricsServer(metrics, {
      host: config.metrics.host,
      port: config.metrics.port,
      ready: () => health.get('readiness') === 'SERVING',
    }),
  ).catch(async (err: unknown) => {
    await grpc.stop(0); // the gRPC port is released: a failed start leaves nothing listening
    throw err;
  });
  for (const name of SERVICE_NAMES) health.set(name, 'SERVING');
  load?.start();
  // A remote index that drops out: `index` reports it; readiness follows only without fail-open (backendFollowers).
  const followers = backendFollowers(config.api.failOpen);
  const readiness = watchAvailability(index, (up) => {
    for (const name of followers) health.set(name, up ? 'SERVING' : 'NOT_SERVING');
  });
  log.info({ grpcPort, metricsPort: metricsServer.port, version: VERSION }, 'API serving');

  return {
    api,
    select,
    grpc,
    health,
    metrics,
    grpcPort,
    metricsPort: metricsServer.port,
    load,
    async stop() {
      clearInterval(readiness);
      await load?.stop(); // aborts the scrapes in flight
      for (const name of SERVICE_NAMES) health.set(name, 'NOT_SERVING');
      const outcome = await grpc.stop(GRPC_DRAIN_MS, () => log.info(DRAINING_LOG));
      if (outcome === 'drained') log.info('gRPC calls drained');
      else log.warn({ graceMs: GRPC_DRAIN_MS }, 'gRPC drain timed out: the calls still running were cancelled');
      await metricsServer.close();
    },
  };
}
