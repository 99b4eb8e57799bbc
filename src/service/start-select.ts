import { SelectApi, type IndexerApi, type PromptFrontend } from '../api/index.js';
import type { BlockHasher } from '../keys/index.js';
import { SelectMetrics, type Config, type Metrics } from '../ops/index.js';
import type { TierWeights } from '../scoring/index.js';
import { MemoryInflightLedger, ThroughputTable, type LoadSource } from '../scoring/load/index.js';
import type { RunningService } from './start-service.js';

/**
 * Builds Select from `select.*`: the in-flight ledger (memory: per replica, not yet shared through Redis), the
 * learned prefill throughputs, the scraped load when a LoadSource is given, and its metrics.
 */
export function createSelect(deps: {
  service: RunningService;
  config: Config;
  api: IndexerApi;
  hasher: BlockHasher;
  weights: TierWeights;
  prompts: PromptFrontend | null;
  metrics: Metrics;
  loads?: LoadSource;
}): SelectApi {
  const { config, service } = deps;
  const s = config.select;
  const ledger = new MemoryInflightLedger({ maxReservations: s.maxReservations });
  const metrics = new SelectMetrics(deps.metrics.registry, ledger);
  return new SelectApi({
    index: service.index,
    tiers: service.index.tiers,
    hasher: deps.hasher,
    weights: deps.weights,
    prompts: deps.prompts,
    limits: config.api,
    settings: s,
    ledger,
    throughput: new ThroughputTable(s.prefillTokensPerSecond, s.throughputAlpha),
    quota: deps.api.quota,
    loads: deps.loads,
    residency: service.residency,
    observer: {
      selected: (policy, outcome) => metrics.countSelect(policy, outcome),
      calibrated: (predicted, actual, prompt) => metrics.observeCalibration(predicted, actual, prompt),
    },
  });
}
