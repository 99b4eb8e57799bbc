import { SelectApi, type IndexerApi, type PromptFrontend, type Speculate } from '../api/index.js';
import type { BlockHasher } from '../keys/index.js';
import { RedisIndex } from '../index/index.js';
import { ConfigError, SelectMetrics, type Config, type Metrics } from '../ops/index.js';
import type { TierWeights } from '../scoring/index.js';
import {
  LEDGER_OPS,
  MemoryInflightLedger,
  RedisInflightLedger,
  ThroughputTable,
  type InflightLedger,
  type LoadSource,
} from '../scoring/load/index.js';
import type { RunningService } from './start-service.js';

/**
 * Builds Select from `select.*`: the in-flight ledger (select.ledger: per replica in memory, or shared by every
 * replica through the Redis index's connection), the learned prefill throughputs, the scraped load when a LoadSource
 * is given, and its metrics.
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
  /** The ledger another part holds (api.processes: the primary's, service/shared-ledger.ts); else select.ledger's. */
  ledger?: InflightLedger;
  /** Where a reservation's speculative entries go (api.processes: every replica, through the primary). */
  speculate?: Speculate;
}): SelectApi {
  const { config, service } = deps;
  const s = config.select;
  const ledger = deps.ledger ?? createLedger(config, service, deps.metrics);
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
    speculate: deps.speculate,
    observer: {
      selected: (policy, outcome) => metrics.countSelect(policy, outcome),
      calibrated: (predicted, actual, prompt) => metrics.observeCalibration(predicted, actual, prompt),
    },
  });
}

/** The in-flight ledger select.ledger names (`auto`: Redis when the index is in Redis). */
export function createLedger(config: Config, service: Pick<RunningService, 'index'>, metrics: Metrics): InflightLedger {
  const { ledger: kind, maxReservations } = config.select;
  const index = service.index;
  if (kind === 'memory' || (kind === 'auto' && !(index instanceof RedisIndex)))
    return new MemoryInflightLedger({ maxReservations });
  if (!(index instanceof RedisIndex))
    throw new ConfigError('select.ledger: redis needs index.backend redis (the ledger shares its connection)');
  const ledger = new RedisInflightLedger({
    client: index.conn.client,
    keyPrefix: index.schema.prefix,
    maxReservations,
  });
  metrics.counter(
    'kv_indexer_select_ledger_redis_round_trips_total',
    'Round trips (script calls) of the Redis in-flight ledger, by operation',
    'op',
    () => Object.fromEntries(LEDGER_OPS.map((op) => [op, ledger.roundTrips[op]])),
  );
  return ledger;
}
