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
}

export interface AddEndpointRequest {
  endpoint: string;
  zmqAddress: string;
  replayAddress: string | null;
  /** Store bound for a store-only publisher (null/absent: the service default). */
  storeBound?: { maxBlocks: number | null; ttlMs: number | null } | null;
}

export interface Fleet {
  list(): Promise<EndpointInfo[]>;
  /** Subscribes to an endpoint (connect mode). */
  add(request: AddEndpointRequest): Promise<EndpointInfo>;
  /** Unsubscribes and clears its entries; returns the entries cleared. */
  remove(endpoint: string): Promise<number>;
  /** Clears its entries (and resynchronises); returns the entries cleared. */
  clear(endpoint: string): Promise<number>;
}
