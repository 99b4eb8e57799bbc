/** What the API needs from the event transport (src/events): the endpoints it follows. Injected. */

export interface EndpointInfo {
  endpoint: string;
  models: string[];
  blocksByTier: Record<string, number>;
  lastSeq: bigint | null;
  gaps: number;
  replays: number;
  /** Seconds since the last event, or null when none was received. */
  lastEventAgeSeconds: number | null;
  state: 'live' | 'degraded' | 'stale';
  /** Data-parallel rank of the identity (absent: 0). */
  rank?: number;
  /** ZMQ address its events come from (connect mode), else null/absent. */
  zmqAddress?: string | null;
  /** Discovery: the vLLM HTTP base URL, the last refusal (`<reason>: <detail>`, null when good), refusals in a row. */
  discoveryUrl?: string | null;
  discoveryError?: string | null;
  discoveryFailures?: number;
  /** Stored blocks of its live batches by vLLM `locality` (LOCAL / REMOTE / unspecified); absent = none known. */
  storedBlocksByLocality?: Record<string, number>;
  /** Stored blocks by vLLM `ownership` (the secondary offloading tier that published them). */
  storedBlocksByOwnership?: Record<string, number>;
  /** Events of its live batches skipped by the decoder, by reason (`bad_token_pairs`, `unknown_locality`, …). */
  skippedEvents?: Record<string, number>;
  /** Load scraped from its vLLM /metrics page (load.scrape); absent when it is not scraped. */
  scrape?: EndpointScrape;
}

/** An endpoint's load scraping (src/scoring/load): its page, the last good figures and the last failure. */
export interface EndpointScrape {
  metricsUrl: string;
  load?: { running: number; waiting: number; kvUsage: number; ageMs: number; stale: boolean };
  error: string | null;
}

export interface AddEndpointRequest {
  endpoint: string;
  /** The PUB address of rank 0; null with discoveryUrl. */
  zmqAddress: string | null;
  replayAddress: string | null;
  /** Data-parallel ranks (default 1). */
  ranks?: number;
  /** Scoring identities per rank: explicit, or llm-d's serving port + r; absent = from the topic. */
  rankIdentities?: { kind: 'explicit'; endpoints: string[] } | { kind: 'serving'; endpoint: string };
  /** A vLLM HTTP base URL listing the ranks' sockets at /kv_event_sources, instead of zmqAddress. */
  discoveryUrl?: string | null;
  /** Store bound for a store-only publisher (null/absent: the service default). */
  storeBound?: { maxBlocks: number | null; ttlMs: number | null } | null;
  /** The vLLM /metrics page to scrape for load instead of load.scrape.urlTemplate (null/absent: the template). */
  metricsUrl?: string | null;
}

export interface Fleet {
  list(): Promise<EndpointInfo[]>;
  /** Subscribes to an endpoint (connect mode). */
  add(request: AddEndpointRequest): Promise<EndpointInfo>;
  /** Unsubscribes and clears its entries; returns the entries cleared. */
  remove(endpoint: string): Promise<number>;
  /** Clears its entries (and resynchronises); returns the entries cleared. */
  clear(endpoint: string): Promise<number>;
  /**
   * Whether some endpoint has published events for this model; null when this process cannot tell (replicas that
   * share the endpoints through leases each see only their own). Drives ScoreResponse.unknown_model.
   */
  publishes?(model: string): boolean | null;
}
