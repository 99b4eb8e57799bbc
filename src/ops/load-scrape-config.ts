import { z } from 'zod';

/**
 * Scraping of each endpoint's vLLM Prometheus page for load signals (config `load.scrape`, src/scoring/load/,
 * docs/operations.md "Load signals"). Off by default: the service then makes no HTTP request to endpoints.
 */
export const LoadScrapeSchema = z
  .object({
    enabled: z.boolean().default(false).meta({ env: 'KV_INDEXER_LOAD_SCRAPE_ENABLED' }),
    /** Each target is fetched this often (fixed rate; a scrape still running makes the next one wait, never overlap). */
    intervalMs: z.number().int().min(10).default(200).meta({ env: 'KV_INDEXER_LOAD_SCRAPE_INTERVAL_MS' }),
    /** Whole scrape (connect + headers + body); a target that hangs is aborted and counted `timeout`. */
    timeoutMs: z.number().int().min(1).default(150).meta({ env: 'KV_INDEXER_LOAD_SCRAPE_TIMEOUT_MS' }),
    /** Scrapes in flight at once across all targets (further ones wait for a slot). */
    concurrency: z.number().int().min(1).default(32).meta({ env: 'KV_INDEXER_LOAD_SCRAPE_CONCURRENCY' }),
    /** A value older than this is reported stale: not fresh load (ListEndpoints omits it, LoadSource flags it). */
    staleMs: z.number().int().min(1).default(2_000).meta({ env: 'KV_INDEXER_LOAD_SCRAPE_STALE_MS' }),
    /** Largest page read; a longer one is cut off while streaming and counted `too_large`. */
    maxBytes: z
      .number()
      .int()
      .min(1024)
      .default(4 * 1024 * 1024)
      .meta({ env: 'KV_INDEXER_LOAD_SCRAPE_MAX_BYTES' }),
    /** The page of an endpoint `<host>:<port>[@dp<r>]` without its own AddEndpoint metrics_url. */
    urlTemplate: z
      .string()
      .regex(/^https?:\/\/\S+$/, 'must be an http(s) URL template such as http://{host}:{port}/metrics')
      .default('http://{host}:{port}/metrics')
      .meta({ env: 'KV_INDEXER_LOAD_SCRAPE_URL_TEMPLATE' }),
    /**
     * Scrape in a worker thread (fetch + parse off the event loop that serves gRPC and ingests events); false: in
     * the event loop (src/scoring/load/scrape-thread.ts explains the trade).
     */
    thread: z.boolean().default(true).meta({ env: 'KV_INDEXER_LOAD_SCRAPE_THREAD' }),
  })
  .strict()
  .prefault({});
export type LoadScrapeConfig = z.output<typeof LoadScrapeSchema>;
