import { ApiError, type AddEndpointRequest, type EndpointInfo, type Fleet } from '../api/index.js';
import {
  EndpointSpecError,
  type DiscoveryStatus,
  type EndpointInfo as StreamInfo,
  type EventTransport,
} from '../events/index.js';
import type { Index } from '../index/index.js';
import type { LoadScraping } from '../scoring/index.js';

/** The API's fleet operations on the event transport: list streams, connect/disconnect endpoints, clear + resync. */
export class TransportFleet implements Fleet {
  constructor(
    private readonly transport: EventTransport,
    private readonly index: Index,
    /** false with endpoint leases: this replica follows only the endpoints it owns. */
    private readonly seesAllEndpoints = true,
    /** Load scraping (load.scrape.enabled), else null: its status joins each row. */
    private readonly load: LoadScraping | null = null,
  ) {}

  publishes(model: string): boolean | null {
    return this.seesAllEndpoints ? this.transport.pipeline.hasPublished(model) : null;
  }

  async list(): Promise<EndpointInfo[]> {
    const streams = this.transport.listEndpoints();
    // Entry counts come from the index itself (a remote index has no synchronous view).
    const counts = await Promise.all(streams.map((e) => this.index.endpointEntries(e.identity)));
    const discoveries = new Map(this.transport.discoveryStatus().map((d) => [d.url, d]));
    const rows: EndpointInfo[] = streams.map((e, i) => ({
      ...toInfo(e),
      blocksByTier: counts[i],
      zmqAddress: this.transport.rankSocketAddress(e.source, e.rank),
      ...discoveryFields(discoveries.get(e.source)),
    }));
    // A discovery URL none of whose ranks has published yet (e.g. it never answered well) still shows, with its error.
    const sources = new Set(streams.map((e) => e.source));
    for (const d of discoveries.values()) {
      if (sources.has(d.url)) continue;
      rows.push({
        ...waiting(d.identity ?? d.url),
        state: d.state === 'failing' ? 'degraded' : 'live',
        ...discoveryFields(d),
      });
    }
    if (this.load) {
      // A declared endpoint that has not published yet is scraped already: it shows, with its load.
      const listed = new Set(rows.map((r) => r.endpoint));
      for (const endpoint of this.load.endpoints()) if (!listed.has(endpoint)) rows.push(waiting(endpoint));
      for (const row of rows) row.scrape = this.load.status(row.endpoint);
    }
    return rows;
  }

  async add(request: AddEndpointRequest): Promise<EndpointInfo> {
    try {
      const bound = request.storeBound ? { storeBound: request.storeBound } : {};
      await this.transport.addEndpoint(
        request.discoveryUrl
          ? {
              address: request.discoveryUrl,
              replay: null,
              ranks: 1,
              endpoint: request.endpoint,
              identities: request.rankIdentities,
              discovery: true,
              ...bound,
            }
          : {
              address: request.zmqAddress!,
              replay: request.replayAddress,
              ranks: request.ranks ?? 1,
              endpoint: request.endpoint,
              identities: request.rankIdentities,
              ...bound,
            },
        'api',
      );
    } catch (err) {
      if (err instanceof EndpointSpecError) throw new ApiError('invalid_argument', '', err.message);
      throw err;
    }
    if (this.load) {
      this.load.setMetricsUrl(request.endpoint, request.metricsUrl ?? null);
      this.load.refresh();
    }
    const known = this.transport.listEndpoints().find((e) => e.identity === request.endpoint);
    // Until it publishes, the endpoint is connected but has no stream yet.
    const info = known ? toInfo(known) : { ...waiting(request.endpoint), discoveryUrl: request.discoveryUrl ?? null };
    return { ...info, scrape: this.load?.status(request.endpoint) };
  }

  async remove(endpoint: string): Promise<number> {
    const entries = await this.entries(endpoint);
    const removed = await this.transport.removeIdentity(endpoint);
    this.load?.forget(endpoint); // stops scraping it now, not at the next sync
    if (removed.length === 0 && entries === 0)
      throw new ApiError('not_found', 'endpoint', `"${endpoint}" is not a known endpoint`);
    return entries;
  }

  async clear(endpoint: string): Promise<number> {
    const entries = await this.entries(endpoint);
    this.transport.pipeline.clearEndpoint(endpoint);
    await this.index.flush();
    return entries;
  }

  private async entries(endpoint: string): Promise<number> {
    return Object.values(await this.index.endpointEntries(endpoint)).reduce((a, b) => a + b, 0);
  }
}

function toInfo(e: StreamInfo): EndpointInfo {
  return {
    endpoint: e.identity,
    models: e.model ? [e.model] : [],
    blocksByTier: e.blocksByTier,
    lastSeq: e.lastSeq,
    gaps: e.stats.gaps,
    replays: e.stats.replays,
    lastEventAgeSeconds: e.lastEventAgeMs === null ? null : e.lastEventAgeMs / 1000,
    state: e.state,
    rank: e.rank,
    storedBlocksByLocality: e.wire.storedBlocksByLocality,
    storedBlocksByOwnership: e.wire.storedBlocksByOwnership,
    skippedEvents: e.wire.skippedEvents,
  };
}

/** A connected endpoint with no stream yet (it has not published). */
function waiting(endpoint: string): EndpointInfo {
  return {
    endpoint,
    models: [],
    blocksByTier: {},
    lastSeq: null,
    gaps: 0,
    replays: 0,
    lastEventAgeSeconds: null,
    state: 'live',
  };
}

function discoveryFields(d: (DiscoveryStatus & { identity?: string | null }) | undefined) {
  return d ? { discoveryUrl: d.url, discoveryError: d.lastError, discoveryFailures: d.failures } : {};
}
