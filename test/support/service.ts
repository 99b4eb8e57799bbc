import { PromptServiceFrontend } from '../../src/service/prompt-frontend.js';
import { embeddedConfig, startEmbedded } from '../../src/service/embedded.js';
import type { RunningApi } from '../../src/service/start-api.js';
import type { RunningService } from '../../src/service/start-service.js';
import type { Config } from '../../src/ops/index.js';
import { grpcClient } from './grpc-client.js';

export interface TestService {
  config: Config;
  service: RunningService;
  api: RunningApi;
  prompts: PromptServiceFrontend | null;
  /** A kvindexer.v1 client of this service. */
  kv: ReturnType<typeof grpcClient>;
  stop(): Promise<void>;
}

/**
 * The whole service on ephemeral ports (ZMQ bind, gRPC, metrics), quiet, optionally with the demo model
 * (fixtures/models/demo.yaml) or another model registry file. `overrides` are config sections merged over those defaults.
 */
export async function startTestService(
  options: { demoModel?: boolean; registry?: string; overrides?: Record<string, Record<string, unknown>> } = {},
): Promise<TestService> {
  const config = embeddedConfig(options.overrides);
  const registry = options.registry ?? (options.demoModel ? 'fixtures/models/demo.yaml' : null);
  const prompts = registry ? await PromptServiceFrontend.load(registry, config.keys, config.images.fetch) : null;
  const { service, api } = await startEmbedded(config, prompts);
  const kv = grpcClient(`127.0.0.1:${api.grpcPort}`, 'kvindexer/v1/kvindexer.proto', 'kvindexer.v1.KvIndexer');
  return {
    config,
    service,
    api,
    prompts,
    kv,
    async stop() {
      kv.close();
      await api.stop();
      await service.stop();
      await prompts?.close();
    },
  };
}
