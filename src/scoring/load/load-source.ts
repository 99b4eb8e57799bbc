import { performance } from 'node:perf_hooks';

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

/** Scraped load per endpoint (the scraper, scraper.ts); Select reads it through this interface only. */
export interface LoadSource {
  /** Undefined when the endpoint is not scraped or has never been scraped successfully. */
  get(endpoint: string): ScrapedLoad | undefined;
}

/** Figures kept from the last good scrape, stamped with `performance.now()` when they were read. */
export interface TimedLoad {
  running: number;
  waiting: number;
  kvUsage: number;
  at: number;
}

/** What Select sees of `load` now: its age, and stale past `staleMs` (both scraping shapes answer get() with it). */
export function scrapedLoadNow(load: TimedLoad, staleMs: number, now = performance.now()): ScrapedLoad {
  const ageMs = now - load.at;
  return { running: load.running, waiting: load.waiting, kvUsage: load.kvUsage, ageMs, stale: ageMs > staleMs };
}
