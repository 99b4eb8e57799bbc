export type { ScrapedLoad, LoadSource, KnownEndpoint, LoadScrapeSettings, LoadScrapeStatus } from './types.js';
export { LoadScraper, type LoadScraperOptions } from './scraper.js';
export { SCRAPE_OUTCOMES, PageFetcher, type ScrapeOutcome, type FetchResult } from './page-fetch.js';
export { PromTextParser, parsePromText, parseValue, type PromSample, type PromType, type PromParseStats } from './prom-text.js';
export { PageLoads, LOAD_METRICS, RUNNING, WAITING, KV_USAGE, KV_USAGE_OLD, type LoadFigures } from './vllm-load.js';
export { metricsUrlFromTemplate } from './metrics-url.js';
