/**
 * The index: request key → entries {endpoint, tier, speculative?}. Two backends implement it: the sharded in-memory
 * one (memory/) and Redis / Redis Cluster (redis/). Ingest (src/events/ingest) owns the engine-key bridge and calls add/remove with
 * request keys; scoring calls lookup.
 *
 * Entries are reference-counted per (request key, endpoint, tier): add increments, remove decrements, and the entry
 * disappears at zero. Writes are buffered per backend and made durable by flush() (one round trip per event batch for
 * Redis; a no-op in memory).
 */

import type { MatchRows } from './match-rows.js';

export interface IndexWriter {
  /**
   * Whether add/remove need each key's chain anchor: the request key of block 0 of the chain the key belongs to.
   * A sharded remote index (Redis Cluster) places a whole chain by its anchor, so that a lookup, which walks a prompt
   * from block 0, touches one shard. Absent/false: anchors are not needed (and need not be tracked).
   */
  readonly needsAnchors?: boolean;
  /**
   * +1 reference on (key, endpoint, tier) for every key. A confirming add replaces a speculative entry. `anchors`
   * (when needsAnchors): one per key, or one for all.
   */
  add(endpoint: string, tier: string, keys: BigUint64Array, anchors?: bigint | BigUint64Array): void;
  /** −1 reference on (key, endpoint, tier) for every key; missing entries are ignored (and counted). */
  remove(endpoint: string, tier: string, keys: BigUint64Array, anchors?: bigint | BigUint64Array): void;
  /** Drop every entry of the endpoint, all tiers, speculative ones too; cost proportional to its own entries. */
  clearEndpoint(endpoint: string): void;
  /** Make buffered writes visible. */
  flush(): Promise<void>;
}

export interface LookupOptions {
  /** Only these endpoints are considered; omitted = every endpoint that holds block 0. */
  candidates?: readonly string[];
  /** Walk at most this many blocks. */
  maxBlocks?: number;
  /** Time used to decide whether speculative entries expired (ms since epoch); default Date.now(). */
  now?: number;
}

/** One endpoint's longest consecutive prefix. */
export interface PrefixMatch {
  endpoint: string;
  /** Consecutive blocks from block 0 that the endpoint holds. */
  matchedBlocks: number;
  /**
   * Per matched block: bit t set when the endpoint holds the block on tier t (see tiers.ts), plus SPECULATIVE_BIT
   * when its only entry for that block is speculative.
   */
  tierMasks: Uint32Array;
}

export interface IndexStats {
  /** Resident (request key, endpoint, tier) entries, speculative included. */
  entries: number;
  /** Distinct request keys. */
  keys: number;
  speculativeEntries: number;
  endpoints: number;
  evictions: number;
  /** Approximate bytes held by the index's own structures. */
  bytes: number;
  maxEntries: number;
}

export interface Index extends IndexWriter {
  readonly backend: 'memory' | 'redis';
  /** Per endpoint that matches at least one block (or per candidate with a match), its longest prefix. */
  lookup(keys: BigUint64Array, options?: LookupOptions): Promise<PrefixMatch[]>;
  /**
   * The same lookup answered synchronously into reused rows (no object per endpoint), for backends that hold the index
   * in this process (memory). Absent on remote backends (Redis): callers use `lookup`.
   */
  lookupRows?(keys: BigUint64Array, options: LookupOptions | undefined, into: MatchRows): void;
  /** Speculative entries for the endpoint (tier GPU) that expire after ttlMs unless a store confirms them. */
  reserve(endpoint: string, keys: BigUint64Array, ttlMs: number): Promise<void>;
  /** Drop the endpoint's speculative entries for these keys (confirmed entries are untouched). Returns how many. */
  release(endpoint: string, keys: BigUint64Array): Promise<number>;
  /** Entries per tier name for one endpoint. */
  endpointEntries(endpoint: string): Promise<Record<string, number>>;
  stats(): Promise<IndexStats>;
  close(): Promise<void>;
}
