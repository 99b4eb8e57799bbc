import type { PromptFrontend } from '../api/index.js';
import { ConfigSchema, createLogger, type Config } from '../ops/index.js';
import type { LoadSource } from '../scoring/load/index.js';
import { startService, type RunningService } from './start-service.js';
import { startApi, type RunningApi } from './start-api.js';

/** The whole service inside another program: the simulator, benchmarks, the soak and tests. */
export interface EmbeddedService {
  config: Config;
  service: RunningService;
  api: RunningApi;
  /** `127.0.0.1:<port>` of its gRPC server. */
  grpcAddress: string;
  stop(): Promise<void>;
}

/**
 * The configuration of an embedded service: ZMQ bound on a free loopback port, gRPC and metrics on free loopback
 * ports, no logs. `overrides` are config sections merged over those (e.g. `{ zmq: { addresses: [] } }`).
 */
export function embeddedConfig(overrides: Record<string, Record<string, unknown>> = {}): Config {
  return ConfigSchema.parse({
    ...overrides,
    zmq: { addresses: ['tcp://127.0.0.1:*'], ...overrides.zmq },
    api: { grpcAddress: '127.0.0.1:0', ...overrides.api },
    metrics: { host: '127.0.0.1', port: 0, ...overrides.metrics },
    log: { level: 'silent', statsIntervalSeconds: 0, ...overrides.log },
  });
}

/**
 * Starts the write path and the API (with an optional prompt frontend) of `config`, silently. `loads`: scraped
 * per-endpoint load for Select (absent = none).
 */
export async function startEmbedded(
  config: Config,
  prompts: PromptFrontend | null = null,
  options: { loads?: LoadSource } = {},
): Promise<EmbeddedService> {
  if (config.api.indexThread) {
    // The embedded service hands out its index, ingestor and API objects, which the index thread would hold.
    throw new Error('startEmbedded runs the service on this thread: start api.indexThread with startThreaded');
  }
  const log = createLogger('silent');
  const service = await startService(config, log);
  const api = await startApi(service, config, log, prompts, options);
  return {
    config,
    service,
    api,
    grpcAddress: `127.0.0.1:${api.grpcPort}`,
    async stop() {
      await api.stop();
      await service.stop();
    },
  };
}
