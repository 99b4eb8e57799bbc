import { ApiError, type EndpointInfo, type Fleet } from '../api/index.js';
import { EndpointSpecError, type EndpointInfo as StreamInfo, type EventTransport } from '../events/index.js';
import type { Index } from '../index/index.js';

/** The API's fleet operations on the event transport: list streams, connect/disconnect endpoints, clear + resync. */
export class TransportFleet implements Fleet {
  constructor(
    private readonly transport: EventTransport,
    private readonly index: Index,
    /** false with endpoint leases: this replica follows only the endpoints it owns. */
    private readonly seesAllEndpoints = true,
  ) {}

  publishes(model: string): boolean | null {
    return this.seesAllEndpoints ? this.transport.pipeline.hasPublished(model) : null;
  }

  async list(): Promise<EndpointInfo[]> {
    const streams = this.transport.listEndpoints();
    // Entry counts come from the index itself (a remote index has no synchronous view).
    const counts = await Promise.all(streams.map((e) => this.index.endpointEntries(e.identity)));
    return streams.map((e, i) => ({ ...toInfo(e), blocksByTier: counts[i] }));
  }

  async add(request: { endpoint: string; zmqAddress: string; replayAddress: string | null }): Promise<EndpointInfo> {
    try {
      await this.transport.addEndpoint({ address: request.zmqAddress, replay: request.replayAddress, ranks: 1, endpoint: request.endpoint }, 'api');
    } catch (err) {
      if (err instanceof EndpointSpecError) throw new ApiError('invalid_argument', '', err.message);
      throw err;
    }
    const known = this.transport.listEndpoints().find((e) => e.identity === request.endpoint);
    // Until it publishes, the endpoint is connected but has no stream yet.
    return known
      ? toInfo(known)
      : { endpoint: request.endpoint, models: [], blocksByTier: {}, lastSeq: null, gaps: 0, replays: 0, lastEventAgeSeconds: null, state: 'live' };
  }

  async remove(endpoint: string): Promise<number> {
    const entries = await this.entries(endpoint);
    const removed = await this.transport.removeIdentity(endpoint);
    if (removed.length === 0 && entries === 0) throw new ApiError('not_found', 'endpoint', `"${endpoint}" is not a known endpoint`);
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
  };
}
