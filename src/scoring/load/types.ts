import type { ScrapedLoad } from './load-source.js';

export type { LoadSource, ScrapedLoad } from './load-source.js';

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
