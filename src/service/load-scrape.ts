import { rankIdentityOf, type EventTransport } from '../events/index.js';
import type { Config, Logger, Metrics } from '../ops/index.js';
import { rankIdentity } from '../common/index.js';
import {
  LoadScraper,
  SCRAPE_COUNTER_FAMILIES,
  SCRAPE_OUTCOMES,
  ScrapeThread,
  type KnownEndpoint,
  type LoadScraping,
  type ScrapeCounters,
} from '../scoring/index.js';

/**
 * Load scraping when `load.scrape.enabled` (else null), started by the caller once the API serves: in a worker thread
 * (`load.scrape.thread`, the default) or in the event loop. The endpoints it scrapes are the ones the transport
 * knows: identities that published, and the declared identities of connected endpoints (an AddEndpoint'd pod is
 * scraped before its first event). Metrics: kv_indexer_load_scrape* (docs/operations.md).
 */
export function createLoadScraper(
  transport: EventTransport,
  config: Config,
  metrics: Metrics,
  log?: Logger,
): LoadScraping | null {
  const settings = {
    ...config.load.scrape,
    allowHostnames: config.api.allowHostnameEndpoints,
    known: () => knownEndpoints(transport),
    onScrape: (_outcome: string, seconds: number) => metrics.observeLoadScrape(seconds),
  };
  const thread =
    config.load.scrape.enabled && config.load.scrape.thread
      ? new ScrapeThread({
          ...settings,
          onRestart: (reason) => log?.warn({ reason }, 'load scrape worker restarted'),
        })
      : null;
  const scraper = thread ?? (config.load.scrape.enabled ? new LoadScraper(settings) : null);
  // The families exist (at zero) with scraping off too, so dashboards need no special case.
  const zeros: ScrapeCounters = {
    outcomes: Object.fromEntries(SCRAPE_OUTCOMES.map((o) => [o, 0])) as ScrapeCounters['outcomes'],
    skippedLines: 0,
  };
  metrics.counterFamilies('kv_indexer_', SCRAPE_COUNTER_FAMILIES, () => scraper?.counters ?? zeros);
  metrics.gauge(
    'kv_indexer_load_scrape_targets',
    'Metrics pages being scraped (ranks of one vLLM server share one)',
    null,
    () => ({ '': scraper?.targetCount ?? 0 }),
  );
  return scraper;
}

/** Identities with a stream (events), plus the per-rank identities connected endpoints declare. */
export function knownEndpoints(transport: EventTransport): KnownEndpoint[] {
  const known = new Map<string, KnownEndpoint>();
  for (const s of transport.listEndpoints())
    known.set(s.identity, { endpoint: s.identity, rank: s.rank ?? 0, model: s.model ?? null });
  for (const { spec } of transport.connectedEndpoints()) {
    for (let rank = 0; rank < spec.ranks; rank++) {
      const identity =
        rankIdentityOf(spec, rank) ?? (spec.endpoint === null ? null : rankIdentity(spec.endpoint, rank));
      if (identity !== null && !known.has(identity)) known.set(identity, { endpoint: identity, rank, model: null });
    }
  }
  return [...known.values()];
}
