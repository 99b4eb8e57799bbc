import type { EndpointInfo } from './fleet.js';
import type { EndpointInfoMsg } from './messages.js';

/** ListEndpoints / AddEndpoint's EndpointInfo message of one endpoint (uint64 as decimal strings). */
export function toEndpointMsg(e: EndpointInfo): EndpointInfoMsg {
  return {
    endpoint: e.endpoint,
    models: e.models,
    blocksByTier: Object.fromEntries(Object.entries(e.blocksByTier).map(([t, n]) => [t, String(n)])),
    lastSeq: e.lastSeq === null ? '0' : e.lastSeq.toString(),
    gaps: String(e.gaps),
    replays: String(e.replays),
    lastEventAgeSeconds: e.lastEventAgeSeconds ?? -1,
    state: e.state,
    dataParallelRank: e.rank ?? 0,
    zmqAddress: e.zmqAddress ?? '',
    discoveryUrl: e.discoveryUrl ?? '',
    discoveryError: e.discoveryError ?? '',
    discoveryFailures: String(e.discoveryFailures ?? 0),
    storedBlocksByLocality: uint64Map(e.storedBlocksByLocality),
    storedBlocksByOwnership: uint64Map(e.storedBlocksByOwnership),
    skippedEvents: uint64Map(e.skippedEvents),
    ...scrapeFields(e.scrape),
  };
}

/** The scraped load: the optional figures only while fresh (a stale value is not load), the rest always. */
function scrapeFields(
  s: EndpointInfo['scrape'],
): Pick<
  EndpointInfoMsg,
  'scrapeAgeSeconds' | 'scrapeError' | 'metricsUrl' | 'scrapedRunning' | 'scrapedWaiting' | 'scrapedKvUsage'
> {
  if (!s) return { scrapeAgeSeconds: -1, scrapeError: '', metricsUrl: '' };
  const fresh =
    s.load && !s.load.stale
      ? { scrapedRunning: s.load.running, scrapedWaiting: s.load.waiting, scrapedKvUsage: s.load.kvUsage }
      : {};
  return {
    ...fresh,
    scrapeAgeSeconds: s.load ? s.load.ageMs / 1000 : -1,
    scrapeError: s.error ?? '',
    metricsUrl: s.metricsUrl,
  };
}

function uint64Map(m: Record<string, number> | undefined): Record<string, string> {
  return m ? Object.fromEntries(Object.entries(m).map(([k, n]) => [k, String(n)])) : {};
}
