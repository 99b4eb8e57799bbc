import type { CounterFamily } from '../../common/index.js';
import type { LoadSource, ScrapedLoad } from './load-source.js';
import type { ScrapeOutcome } from './page-fetch.js';

export type { LoadSource, ScrapedLoad } from './load-source.js';

/** An endpoint the service knows, as the scraper needs it. */
export interface KnownEndpoint {
  /** Identity `<host>:<port>[@dp<r>]`. */
  endpoint: string;
  /** Data-parallel rank: which `engine` series of the page are its own. */
  rank: number;
  /** The model it publishes, when known (picks a page's model_name series). */
  model: string | null;
  /** Its metrics page when already resolved (the main thread resolves them for the scrape worker); else derived. */
  url?: string;
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

/** What scraping counted; `restarts` only in the worker shape (scrape-thread.ts). */
export interface ScrapeCounters {
  outcomes: Record<ScrapeOutcome, number>;
  skippedLines: number;
  restarts?: number;
}

/**
 * Scraping's counts on /metrics (registered by service/load-scrape.ts). No endpoint label: at 256 endpoints that
 * would be 256 × 6 series for a figure ListEndpoints already gives per endpoint.
 */
export const SCRAPE_COUNTER_FAMILIES: readonly CounterFamily<ScrapeCounters>[] = [
  {
    name: 'load_scrapes_total',
    help: "Scrapes of endpoints' vLLM /metrics pages, by outcome",
    label: 'outcome',
    read: (c) => c.outcomes,
  },
  {
    name: 'load_scrape_skipped_lines_total',
    help: 'Invalid lines skipped on scraped /metrics pages',
    label: null,
    read: (c) => ({ '': c.skippedLines }),
  },
  {
    name: 'load_scrape_worker_restarts_total',
    help: 'Scrape worker threads that died and were restarted (load.scrape.thread)',
    label: null,
    read: (c) => ({ '': c.restarts ?? 0 }),
  },
];

/**
 * Load scraping as the service drives it: LoadScraper (scraper.ts, in the event loop) and ScrapeThread
 * (scrape-thread.ts, a worker thread) both are one.
 */
export interface LoadScraping extends LoadSource {
  readonly counters: ScrapeCounters;
  /** Metrics pages being scraped. */
  readonly targetCount: number;
  status(endpoint: string): LoadScrapeStatus | undefined;
  /** Identities being scraped, sorted. */
  endpoints(): string[];
  setMetricsUrl(endpoint: string, url: string | null): void;
  /** A removed endpoint: its metrics_url is forgotten and, once `known()` no longer lists it, its state. */
  forget(endpoint: string): void;
  /** Re-reads the known endpoints now. */
  refresh(): void;
  start(): void;
  stop(): Promise<void>;
}
