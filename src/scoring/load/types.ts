/** What Select reads of an endpoint's scraped load (issue 14 §1). `endpoint` is the canonical identity string. */
export interface ScrapedLoad {
  /** vllm:num_requests_running of its engine. */
  running: number;
  /** vllm:num_requests_waiting of its engine. */
  waiting: number;
  /** vllm:kv_cache_usage_perc (or the older vllm:gpu_cache_usage_perc), 0..1. */
  kvUsage: number;
  /** Since the last good scrape. */
  ageMs: number;
  /** Older than load.scrape.staleMs: not fresh load. */
  stale: boolean;
}

export interface LoadSource {
  /** Undefined when the endpoint is not scraped or has never been scraped successfully. */
  get(endpoint: string): ScrapedLoad | undefined;
}

/** An endpoint the service knows, as the scraper needs it. */
export interface KnownEndpoint {
  /** Identity `<host>:<port>[@dp<r>]`. */
  endpoint: string;
  /** Data-parallel rank: which `engine` series of the page are its own. */
  rank: number;
  /** The model it publishes, when known (picks a page's model_name series). */
  model: string | null;
}

/** config `load.scrape` (src/ops/load-scrape-config.ts), as the scraper reads it. */
export interface LoadScrapeSettings {
  intervalMs: number;
  timeoutMs: number;
  concurrency: number;
  staleMs: number;
  maxBytes: number;
  urlTemplate: string;
}

/** One endpoint's scraping, for ListEndpoints. */
export interface LoadScrapeStatus {
  metricsUrl: string;
  /** The last good figures (flagged stale past staleMs); undefined before the first good scrape. */
  load: ScrapedLoad | undefined;
  /** The last scrape's failure `<outcome>: <detail>`, null when it succeeded. */
  error: string | null;
}
