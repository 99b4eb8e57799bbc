import { GrpcServer, GUARD_COUNTER_FAMILIES, HealthService, type Operations } from '../api/index.js';
import { startMetricsServer, type Config, type Logger, type Metrics } from '../ops/index.js';
import { grpcOptions } from './grpc-options.js';
import { atSetting } from './startup-error.js';

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

/** The network front: the gRPC server over some operations, health, and the /metrics + /healthz server. */
export interface ApiFront {
  grpc: GrpcServer;
  health: HealthService;
  grpcPort: number;
  metricsPort: number;
  /** Every health name but liveness SERVING (true) or NOT_SERVING. */
  setServing(up: boolean): void;
  /** Health NOT_SERVING, gRPC drained (GRPC_DRAIN_MS), the metrics server closed. */
  stop(): Promise<void>;
}

/**
 * Starts gRPC (api.*) and the metrics server (metrics.*) in front of `operations`, every health name but liveness
 * NOT_SERVING until `setServing(true)`. A failed start leaves nothing listening.
 */
export async function startFront(options: {
  operations: Operations;
  config: Config;
  log: Logger;
  metrics: Metrics;
  /** `bytes`: the operations take and give protobuf bytes (they run in the index thread). */
  wire?: 'messages' | 'bytes';
  /** The whole /metrics text from this registry's (the index thread's appended; ops/metrics.ts `render`). */
  renderMetrics?: (own: string) => Promise<string>;
  /** false: no metrics server here (a serving process: the primary serves /metrics and /healthz for all of them). */
  serveMetrics?: boolean;
}): Promise<ApiFront> {
  const { config, log, metrics } = options;
  const health = new HealthService();
  for (const name of SERVICE_NAMES) health.set(name, 'NOT_SERVING');
  health.set('liveness', 'SERVING');
  const grpc = new GrpcServer(options.operations, health, { ...grpcOptions(config), wire: options.wire }, log);
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
  const noMetricsServer = { port: 0, close: async () => undefined };
  const metricsServer =
    options.serveMetrics === false
      ? noMetricsServer
      : await atSetting('metrics.port', `${config.metrics.host}:${config.metrics.port}`, () =>
          startMetricsServer(metrics, {
            host: config.metrics.host,
            port: config.metrics.port,
            ready: () => health.get('readiness') === 'SERVING',
            render: options.renderMetrics,
          }),
        ).catch(async (err: unknown) => {
          await grpc.stop(0); // the gRPC port is released: a failed start leaves nothing listening
          throw err;
        });
  return {
    grpc,
    health,
    grpcPort,
    metricsPort: metricsServer.port,
    setServing(up) {
      for (const name of SERVICE_NAMES) if (name !== 'liveness') health.set(name, up ? 'SERVING' : 'NOT_SERVING');
    },
    async stop() {
      for (const name of SERVICE_NAMES) health.set(name, 'NOT_SERVING');
      const outcome = await grpc.stop(GRPC_DRAIN_MS, () => log.info(DRAINING_LOG));
      if (outcome === 'drained') log.info('gRPC calls drained');
      else log.warn({ graceMs: GRPC_DRAIN_MS }, 'gRPC drain timed out: the calls still running were cancelled');
      await metricsServer.close();
    },
  };
}
