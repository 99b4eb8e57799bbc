/** Load-aware selection: scraped load (vLLM /metrics), in-flight ledger, the cost model, learned prefill throughput. */
export type { LoadSource, ScrapedLoad } from './load-source.js';
export {
  MemoryInflightLedger,
  LedgerError,
  checkCount,
  MAX_TOKEN_COUNT,
  MAX_RESERVATION_TTL_MS,
  type InflightLedger,
  type InflightLoad,
  type NewReservation,
  type Reservation,
  type RetireReason,
  type LedgerErrorCode,
} from './inflight.js';
export { RedisInflightLedger, LEDGER_OPS, type LedgerOp, type RedisLedgerOptions } from './redis-ledger.js';
export {
  decide,
  imagesToEncode,
  predictTtftMs,
  requestDigest,
  tieHash,
  POLICIES,
  DEFAULT_POLICY,
  KV_USAGE_EXCLUSION,
  type Policy,
  type CostParams,
  type CostInput,
  type ImageCost,
  type CandidateCost,
  type Decision,
} from './cost-model.js';
export { ThroughputTable } from './throughput.js';
export type { KnownEndpoint, LoadScrapeSettings, LoadScrapeStatus, LoadScraping, ScrapeCounters } from './types.js';
export { SCRAPE_COUNTER_FAMILIES } from './types.js';
export { LoadScraper, type LoadScraperOptions } from './scraper.js';
export { ScrapeThread, type ScrapeThreadOptions } from './scrape-thread.js';
export { ScrapeRoster } from './roster.js';
export { SCRAPE_OUTCOMES, PageFetcher, type ScrapeOutcome, type FetchResult } from './page-fetch.js';
export {
  PromTextParser,
  parsePromText,
  parseValue,
  type PromSample,
  type PromType,
  type PromParseStats,
} from './prom-text.js';
export { PageLoads, LOAD_METRICS, RUNNING, WAITING, KV_USAGE, KV_USAGE_OLD, type LoadFigures } from './vllm-load.js';
export { metricsUrlFromTemplate } from './metrics-url.js';
