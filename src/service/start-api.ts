import { readFileSync } from 'node:fs';
import { GrpcServer, HealthService, IndexerApi, type GrpcServerOptions, type PromptFrontend, type SelectApi } from '../api/index.js';
import { BlockHasher } from '../keys/index.js';
import { ConfigError, Metrics, startMetricsServer, type Config, type Logger } from '../ops/index.js';
import { TierWeights } from '../scoring/index.js';
import type { LoadSource } from '../scoring/load/index.js';
import { createSelect } from './start-select.js';
import { TransportFleet } from './transport-fleet.js';
import type { RunningService } from './start-service.js';
import { atSetting } from './startup-error.js';
import { registerEndpointGauges } from './endpoint-metrics.js';
import { createLoadScraper } from './load-scrape.js';
import type { LoadScraper } from '../scoring/index.js';

export interface RunningApi {
  api: IndexerApi;
  select: SelectApi;
  grpc: GrpcServer;
  health: HealthService;
  metrics: Metrics;
  grpcPort: number;
  metricsPort: number;
  /** Load scraped from the endpoints' vLLM /metrics (a LoadSource for Select); null unless load.scrape.enabled. */
  load: LoadScraper | null;
  stop(): Promise<void>;
}

/** How long shutdown waits for in-flight gRPC calls before cancelling them. */
export const GRPC_DRAIN_MS = 5_000;
/** Logged when new gRPC calls start being refused (UNAVAILABLE) and the calls in flight are drained. */
export const DRAINING_LOG = 'gRPC draining: new calls refused, calls in flight finishing';

export const SERVICE_NAMES = ['', 'liveness', 'readiness', 'index', 'kvindexer.v1.KvIndexer', 'indexer.v1.IndexerService'];

/**
 * Health names that follow the index backend (Redis) when it drops out. `index` always does. Readiness does only
 * when fail-open is off: with fail-open on, every replica shares the same Redis, so taking readiness away would take
 * every replica out of the Service at once, while each can still answer Score (zero scores flagged `degraded`; the
 * router's other scorers decide). See docs/operations.md, "Failure modes".
 */
export function backendFollowers(failOpen: boolean): string[] {
  return failOpen ? ['index'] : ['', 'readiness', 'index'];
}

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

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
  const load = createLoadScraper(service.transport, config, metrics);
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
  metrics.counter('kv_indexer_score_unknown_model_total', 'Score calls naming a model no followed endpoint has published (ScoreResponse.unknown_model)', null, () => ({ '': unknownModels.total }));
  registerWritePathGauges(metrics, service);
  const residency = service.residency;
  metrics.gauge('kv_indexer_encoder_residency_entries', 'Image identifiers held by encoder residency over all endpoints (this replica)', null, () => ({ '': residency.entries }));
  metrics.counter('kv_indexer_encoder_residency_evictions_total', 'Encoder residency entries dropped, by reason (lru, ttl, endpoint_cleared)', 'reason', () => ({ ...residency.evictions }));
  const tokenizer = prompts?.tokenizerStats?.bind(prompts);
  if (tokenizer) {
    metrics.gauge('kv_indexer_tokenizer_workers', 'Tokenizer worker threads', null, () => ({ '': tokenizer().workers }));
    metrics.counter('kv_indexer_tokenizer_dropped_total', 'Tokenizations dropped or stopped, by reason', 'reason', () => {
      const t = tokenizer();
      return { cancelled_queued: t.cancelledQueued, cancelled_running: t.cancelledRunning, over_budget: t.overBudget };
    });
  }

  const select = createSelect({ service, config, api, hasher, weights, prompts, metrics, loads: options.loads ?? load ?? undefined });
  const grpc = new GrpcServer(api, health, grpcOptions(config), log, select);
  const grpcPort = await atSetting('api.grpcAddress', config.api.grpcAddress, () => grpc.start());
  metrics.gauge('kv_indexer_grpc_connections', 'Open gRPC (HTTP/2) connections', null, async () => ({ '': await grpc.connections() }));
  metrics.counter('kv_indexer_grpc_connections_closed_total', 'gRPC connections closed by the server guard, by reason', 'reason', () => ({
    handshake_timeout: grpc.guard.handshakeTimeouts,
    max_connections: grpc.guard.refused,
  }));
  metrics.gauge('kv_indexer_grpc_open_calls', 'gRPC calls (HTTP/2 streams) open now over all connections', null, () => ({ '': grpc.guard.openCalls }));
  metrics.counter('kv_indexer_grpc_calls_refused_total', 'gRPC calls refused or reset at the open-call bound, by reason', 'reason', () => ({
    max_open_calls: grpc.guard.callsRefused,
    evicted_fair_share: grpc.guard.callsEvicted,
  }));
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

/** TLS material and the admin token, read from their files now so that a bad path fails the start, not a call. */
function grpcOptions(config: Config): GrpcServerOptions {
  const { api } = config;
  const read = (key: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(`api.${key}: cannot read ${path}: ${(err as Error).message}`);
    }
  };
  if (!!api.tlsCertFile !== !!api.tlsKeyFile) throw new ConfigError('api.tlsCertFile and api.tlsKeyFile go together');
  if (api.tlsClientCaFile && !api.tlsCertFile) throw new ConfigError('api.tlsClientCaFile needs api.tlsCertFile and api.tlsKeyFile');
  const options: GrpcServerOptions = {
    address: api.grpcAddress,
    maxMessageBytes: api.maxMessageBytes,
    limits: {
      maxConnectionIdleMs: api.maxConnectionIdleMs,
      maxConnectionAgeMs: api.maxConnectionAgeMs,
      maxConnectionAgeGraceMs: api.maxConnectionAgeGraceMs,
      keepaliveTimeMs: api.keepaliveTimeMs,
      keepaliveTimeoutMs: api.keepaliveTimeoutMs,
      maxConcurrentStreams: api.maxConcurrentStreams,
      maxConnections: api.maxConnections,
      handshakeTimeoutMs: api.handshakeTimeoutMs,
      maxOpenCalls: api.maxOpenCalls,
    },
  };
  if (api.tlsCertFile) {
    options.tls = {
      cert: read('tlsCertFile', api.tlsCertFile),
      key: read('tlsKeyFile', api.tlsKeyFile),
      clientCa: api.tlsClientCaFile ? read('tlsClientCaFile', api.tlsClientCaFile) : undefined,
    };
  }
  if (api.adminTokenFile) {
    const token = read('adminTokenFile', api.adminTokenFile).toString('utf8').trim();
    if (token.length < 16) throw new ConfigError(`api.adminTokenFile: the token in ${api.adminTokenFile} is shorter than 16 characters`);
    options.adminToken = token;
  }
  return options;
}

/** False while a remote index (Redis) is disconnected; always true for the in-memory index. */
function indexAvailable(index: object): boolean {
  return !('available' in index) || (index as { available: boolean }).available;
}

/** Polls an index that can become unavailable (Redis); undefined for one that cannot. */
function watchAvailability(index: object, changed: (up: boolean) => void): NodeJS.Timeout | undefined {
  if (!('available' in index)) return undefined;
  let last = true;
  const timer = setInterval(() => {
    const up = (index as { available: boolean }).available;
    if (up !== last) changed((last = up));
  }, 250);
  timer.unref();
  return timer;
}

/** The same promise for calls within `ttlMs`: gauges read at one scrape share one fetch. */
function sharedSnapshot<T>(fetch: () => Promise<T>, ttlMs: number): () => Promise<T> {
  let at = -Infinity;
  let pending: Promise<T> | null = null;
  return () => {
    const now = Date.now();
    if (pending === null || now - at > ttlMs) {
      at = now;
      pending = fetch();
      pending.catch(() => (pending = null));
    }
    return pending;
  };
}

function registerWritePathGauges(metrics: Metrics, service: RunningService): void {
  const { index, ingestor, pipeline } = service;
  const p = 'kv_indexer_';
  // One index stats call per scrape, shared by the gauges below (a round trip with Redis).
  const cached = sharedSnapshot(() => index.stats(), 1_000);
  // A backend known to be down is not asked (nor its last figures shown): the scrape does not wait for a timeout.
  const stats = () => (indexAvailable(index) ? cached() : Promise.reject(new Error('index backend unavailable')));
  // During a Redis outage the index figures below have no samples (not a 500): this gauge says why.
  metrics.gauge(`${p}index_backend_up`, 'Whether the index backend answered this scrape (0: index figures unavailable)', null, async () => ({
    '': await stats().then(
      () => 1,
      () => 0,
    ),
  }));
  if ('registryLosses' in index) {
    metrics.counter(`${p}redis_registry_losses_total`, 'Times the Redis endpoint registry was found lost (evicted or deleted) and resynchronised', null, () => ({
      '': (index as { registryLosses: number }).registryLosses,
    }));
  }
  metrics.gauge(`${p}index_entries`, 'Resident (block, endpoint, tier) entries', null, async () => ({ '': (await stats()).entries }));
  metrics.gauge(`${p}index_keys`, 'Distinct request keys in the index', null, async () => ({ '': (await stats()).keys }));
  metrics.gauge(`${p}index_bytes`, 'Bytes held by the index structures', null, async () => ({ '': (await stats()).bytes }));
  metrics.gauge(`${p}index_speculative_entries`, 'Speculative entries', null, async () => ({ '': (await stats()).speculativeEntries }));
  metrics.counter(`${p}index_evictions_total`, 'Entries evicted at the capacity bound', null, async () => ({ '': (await stats()).evictions }));
  const t = pipeline.counters;
  metrics.counter(`${p}messages_received_total`, 'ZMQ messages received', null, () => ({ '': t.messages }));
  metrics.counter(`${p}messages_dropped_total`, 'Messages dropped before decoding, by reason', 'reason', () => t.dropped);
  metrics.counter(`${p}decode_errors_total`, 'Undecodable payloads and skipped events, by reason', 'reason', () => t.decodeErrors);
  metrics.counter(`${p}zmq_handshake_failures_total`, 'Failed ZMQ handshakes of connect-mode sockets (CURVE keys)', null, () => ({ '': service.transport.handshakeFailures }));
  const discovery = service.transport.discoveryCounters;
  metrics.counter(`${p}discovery_polls_total`, 'Discovery polls of vLLM /kv_event_sources, by outcome (ok or the refusal reason)', 'outcome', () => discovery.polls);
  metrics.counter(`${p}discovery_changes_total`, 'Rank sockets changed by discovery answers (added, moved, removed)', 'change', () => discovery.changes);
  metrics.gauge(`${p}discovery_failing`, 'Discovery URLs whose last answer was refused', null, () => ({
    '': service.transport.discoveryStatus().filter((d) => d.state === 'failing').length,
  }));
  metrics.counter(`${p}sequence_gaps_total`, 'Sequence gaps seen', null, () => ({ '': t.sequenceGaps }));
  metrics.counter(`${p}duplicates_total`, 'Live batches at or below the last applied sequence, dropped', null, () => ({ '': t.duplicates }));
  metrics.counter(`${p}lost_batches_total`, 'Live batches that could not be decoded (treated as lost)', null, () => ({ '': t.lostBatches }));
  metrics.counter(`${p}publisher_restarts_total`, 'Publisher restarts detected (endpoint cleared)', null, () => ({ '': t.restarts }));
  metrics.counter(`${p}replays_total`, 'Replay requests by outcome', 'outcome', () => ({
    requested: t.replaysRequested,
    completed: t.replaysCompleted,
    ...Object.fromEntries(Object.entries(t.replaysFailed).map(([reason, n]) => [`failed_${reason}`, n])),
  }));
  metrics.counter(`${p}replayed_batches_total`, 'Batches applied from replay replies', null, () => ({ '': t.replayedBatches }));
  metrics.counter(`${p}unrecoverable_total`, 'Holes replay could not fill, by reason', 'reason', () => t.unrecoverable);
  metrics.counter(`${p}endpoint_clears_total`, 'Endpoint clears decided by the transport, by reason', 'reason', () => t.clears);
  metrics.counter(`${p}endpoints_degraded_total`, 'Endpoints marked degraded, by reason', 'reason', () => t.degraded);
  metrics.counter(`${p}identity_mismatches_total`, 'Messages whose topic names another endpoint than configured', null, () => ({ '': t.identityMismatches }));
  metrics.counter(`${p}queue_overflow_drops_total`, 'Batches dropped because an endpoint queue was full', null, () => ({ '': t.overflowDrops }));
  registerEndpointGauges(metrics, pipeline, service.config.metrics.maxEndpointSeries, p);
  metrics.counter(`${p}events_total`, 'Events applied, by type', 'type', () => ({
    BlockStored: ingestor.counters.storedEvents,
    BlockRemoved: ingestor.counters.removedEvents,
    AllBlocksCleared: ingestor.counters.clearedEvents,
  }));
  metrics.counter(`${p}blocks_total`, 'Engine blocks applied, by operation', 'op', () => ({
    stored: ingestor.counters.blocksStored,
    removed: ingestor.counters.blocksRemoved,
  }));
  metrics.counter(`${p}store_bound_dropped_blocks_total`, 'Engine blocks dropped by endpoint store bounds (max blocks or TTL)', null, () => ({
    '': ingestor.counters.boundDrops,
  }));
  metrics.counter(`${p}key_only_chunk_removals_total`, 'Lower-tier chunks removed by their key alone (all their blocks released)', null, () => ({
    '': ingestor.counters.keyOnlyRemovals,
  }));
  metrics.counter(`${p}ingest_skipped_blocks_total`, 'Engine blocks not indexed, by reason', 'reason', () => ({
    parent_unknown: ingestor.counters.parentUnknown,
    offload_unknown: ingestor.counters.offloadUnknown,
    removed_unknown: ingestor.counters.removedUnknown,
    group_without_kind: ingestor.counters.groupWithoutKind,
    ...Object.fromEntries([...ingestor.counters.skippedByKind].map(([kind, n]) => [`kind_${kind}`, n])),
  }));
}

/**
 * Score calls for a model no endpoint publishes: counted, and warned about once per model name (the first 100 names;
 * then once a minute for any), with the count so far. A picker with a misspelt model name would otherwise get zero
 * scores silently and route at random.
 */
class UnknownModelWarnings {
  total = 0;
  private readonly perModel = new Map<string, number>();
  private lastOverflowWarning = -Infinity;

  constructor(private readonly log: Logger) {}

  count(model: string): void {
    this.total++;
    const seen = this.perModel.get(model);
    if (seen !== undefined) {
      this.perModel.set(model, seen + 1);
      return;
    }
    if (this.perModel.size < 100) {
      this.perModel.set(model, 1);
    } else if (Date.now() - this.lastOverflowWarning < 60_000) return;
    else this.lastOverflowWarning = Date.now();
    this.log.warn({ model: model.slice(0, 200), unknownModelScores: this.total }, 'Score for a model no endpoint has published: scores are zero (a misspelt or unserved model?)');
  }
}
