/** Options and statistics of the Redis index, and their validation (before anything connects). */

import type { TierRegistry } from '../tiers.js';
import type { IndexStats } from '../types.js';
import type { Placement } from './key-schema.js';
import type { RedisConnectionOptions } from './redis-client.js';

export interface RedisIndexOptions extends RedisConnectionOptions {
  /** Prefix of every key; default "kvi:". Replicas sharing an index use the same prefix. */
  keyPrefix?: string;
  /** Default 'single' for a server, 'anchor' for a cluster (see key-schema.ts). */
  placement?: Placement;
  /** Tags that anchors fold onto under placement 'anchor'; default 1024. */
  tagCount?: number;
  /**
   * Hashes each endpoint's key set is spread over (all tags together); default 4096. Small hashes are stored
   * compactly (listpack, ≤ hash-max-listpack-entries = 128 fields): ~14 B per entry up to ~500k entries per endpoint.
   */
  endpointBuckets?: number;
  /** TTL of block keys, refreshed by every add (a safety net for lost removes); default none. */
  entryTtlMs?: number;
  /** Bound on buffered keys between flushes (see write-buffer.ts); default 1,000,000. */
  maxBufferedKeys?: number;
  /**
   * Keys per APPLY script at most; a flush with more sends several (pipelined, in order) so that Redis serves other
   * clients between them. Default 16,384 (~60 ms of Redis time).
   */
  maxKeysPerScript?: number;
  /** Expired speculative entries reclaimed per write script at most; default 256. */
  sweepBatch?: number;
  tiers?: TierRegistry;
  /** Milliseconds since the epoch; default Date.now. */
  clock?: () => number;
  /** Called when an endpoint's index state became unknown (failed flush, buffer overflow, Redis data lost). */
  onResync?: (endpoint: string, reason: string) => void;
  /**
   * Accept a maxmemory-policy that may evict any key (`allkeys-*`): the endpoint registry and leases could go, and
   * with them the id → pod mapping. Refused at open() unless set (issue 17, bug 2; docs/redis.md, "Eviction").
   */
  allowUnsafeEviction?: boolean;
  /** How often the registry generation is checked for a loss (ms; default 1000). */
  registryCheckMs?: number;
}

export interface RedisIndexStats extends IndexStats {
  /** remove() keys for which the (key, endpoint, tier) entry did not exist (this process's removes). */
  removesOfUnknown: number;
  /**
   * Keys this process wrote without an anchor under placement 'anchor': they went to the default tag, where lookups
   * (placed by their keys[0]) do not see them. Non-zero means the writer does not pass anchors.
   */
  unanchoredKeys: number;
  /** Speculative entries reclaimed after expiring (every replica's sweeps). */
  expiredSpeculative: number;
}

export interface ResolvedOptions {
  keyPrefix: string;
  placement: Placement;
  tagCount: number | undefined;
  endpointBuckets: number | undefined;
  entryTtlMs: number;
  maxBufferedKeys: number;
  maxKeysPerScript: number;
  sweepBatch: number;
}

export function resolveOptions(options: RedisIndexOptions): ResolvedOptions {
  const cluster = (options.cluster?.length ?? 0) > 0;
  const out: ResolvedOptions = {
    keyPrefix: options.keyPrefix ?? 'kvi:',
    placement: options.placement ?? (cluster ? 'anchor' : 'single'),
    tagCount: options.tagCount,
    endpointBuckets: options.endpointBuckets,
    entryTtlMs: options.entryTtlMs ?? 0,
    maxBufferedKeys: options.maxBufferedKeys ?? 1_000_000,
    maxKeysPerScript: options.maxKeysPerScript ?? 16_384,
    sweepBatch: options.sweepBatch ?? 256,
  };
  integer('entryTtlMs', out.entryTtlMs, 0);
  integer('maxBufferedKeys', out.maxBufferedKeys, 1);
  integer('maxKeysPerScript', out.maxKeysPerScript, 1);
  integer('sweepBatch', out.sweepBatch, 0);
  if (options.commandTimeoutMs !== undefined) integer('commandTimeoutMs', options.commandTimeoutMs, 1);
  if (!options.url && !cluster) throw new RangeError('the Redis index needs a url or cluster nodes');
  return out;
}

function integer(name: string, value: number, min: number): void {
  if (!(Number.isInteger(value) && value >= min))
    throw new RangeError(`${name} must be an integer ≥ ${min}, got ${String(value)}`);
}
