import { readFileSync } from 'node:fs';
import {
  IndexerApi,
  localOperations,
  type Operations,
  type PromptFrontend,
  type SelectApi,
  type Speculate,
} from '../api/index.js';
import { RESIDENCY_COUNTER_FAMILIES } from '../index/index.js';
import { BlockHasher } from '../keys/index.js';
import type { Config, Logger, Metrics } from '../ops/index.js';
import { TierWeights, type LoadScraping } from '../scoring/index.js';
import type { InflightLedger, LoadSource } from '../scoring/load/index.js';
import { createLoadScraper } from './load-scrape.js';
import { createSelect } from './start-select.js';
import type { RunningService } from './start-service.js';
import { TransportFleet } from './transport-fleet.js';
import { UnknownModelWarnings } from './unknown-model-warnings.js';
import { registerWritePathGauges } from './write-path-metrics.js';

/** The API over a running write path, without a network front: what the gRPC server (here or across a thread) calls. */
export interface ApiCore {
  api: IndexerApi;
  select: SelectApi;
  /** Every unary RPC by gRPC path (api/operations.ts). */
  operations: Operations;
  /** Load scraped from the endpoints' vLLM /metrics (a LoadSource for Select); null unless load.scrape.enabled. */
  load: LoadScraping | null;
}

/** The package's version (GetInfo, the start-up log), from package.json beside src/ and dist/ alike. */
export const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/**
 * Builds IndexerApi and Select over `service` and registers their metrics (and the write path's) in `metrics`. The
 * load scraper, if on, is started and stopped by the caller (`load.start()` once serving, `load.stop()` on shutdown).
 */
export function createApiCore(
  service: RunningService,
  config: Config,
  log: Logger,
  metrics: Metrics,
  prompts: PromptFrontend | null,
  /**
   * `ledger`: Select's in-flight ledger when another part holds it (api.processes: the primary's); `speculate`: where
   * speculative entries (Select's pick, Score's `speculate`) go when every replica must see them.
   */
  options: { loads?: LoadSource; ledger?: InflightLedger; speculate?: Speculate } = {},
): ApiCore {
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
    speculate: options.speculate,
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
    ledger: options.ledger,
    speculate: options.speculate,
  });
  return { api, select, operations: localOperations(api, select), load };
}
