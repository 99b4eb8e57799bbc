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
