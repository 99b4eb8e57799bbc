/**
 * Endpoint ownership leases in Redis, so that N indexer replicas sharing one index ingest each endpoint exactly once.
 * A lease is a key `<prefix>{lease}l:<endpoint>` holding the owner's id, with a TTL (Redis server time, so replica
 * clocks do not matter). All leases share the hash tag "lease": one script acquires or renews any number of them in
 * one round trip, on a single server or a cluster.
 *
 * The owner renews well within the TTL (e.g. every ttl/3); a replica that stops renewing (crash, partition) loses
 * its leases when they expire, and any other replica's next acquire() takes them over. Each acquisition by a new
 * owner increments the endpoint's epoch: status 'acquired' with epoch > 1 is a takeover, and tells the new owner to
 * resynchronise the endpoint (clear and rebuild, or replay) before trusting its index entries.
 * Shutdown releases every held lease so a successor need not wait for the TTL.
 */

import type { Cluster, Redis } from 'ioredis';

export type LeaseStatus = 'acquired' | 'renewed' | 'held-by-other';

export interface LeaseResult {
  endpoint: string;
  status: LeaseStatus;
  /** The current owner (this replica when acquired or renewed). */
  owner: string;
  /** Acquisitions of this endpoint so far, by any owner (1 = first ever). It grows on every change of hands. */
  epoch: number;
}

/** ARGV: ttlMs, owner, endpoints...; KEYS[1] = <prefix>{lease}. Returns {status, owner, epoch} per endpoint. */
const ACQUIRE_LUA = `
local base = KEYS[1]
local ttl, owner = tonumber(ARGV[1]), ARGV[2]
local out = {}
for i = 3, #ARGV do
  local k = base .. 'l:' .. ARGV[i]
  local cur = redis.call('GET', k)
  local status
  if not cur then
    redis.call('SET', k, owner, 'PX', ttl)
    redis.call('HINCRBY', base .. 'epochs', ARGV[i], 1)
    status, cur = 'acquired', owner
  elseif cur == owner then
    redis.call('PEXPIRE', k, ttl)
    status = 'renewed'
  else
    status = 'held-by-other'
  end
  out[#out + 1] = {status, cur, tonumber(redis.call('HGET', base .. 'epochs', ARGV[i]) or 0)}
end
return out
`;

/** KEYS[1] = <prefix>{lease}; ARGV: owner, endpoints... Deletes the leases this owner holds; returns how many. */
const RELEASE_LUA = `
local n = 0
for i = 2, #ARGV do
  local k = KEYS[1] .. 'l:' .. ARGV[i]
  if redis.call('GET', k) == ARGV[1] then
    redis.call('DEL', k)
    n = n + 1
  end
end
return n
`;

type LeaseScript = (key: string, ...args: (string | number)[]) => Promise<unknown>;

export class EndpointLeases {
  private readonly base: string;
  private readonly held = new Set<string>();
  private readonly acquireScript: LeaseScript;
  private readonly releaseScript: LeaseScript;

  constructor(
    client: Redis | Cluster,
    readonly owner: string,
    readonly ttlMs: number,
    keyPrefix = 'kvi:',
  ) {
    if (!(Number.isInteger(ttlMs) && ttlMs > 0)) throw new RangeError(`lease ttlMs must be a positive integer`);
    if (owner.length === 0) throw new RangeError('lease owner must be a non-empty string');
    this.base = `${keyPrefix}{lease}`;
    client.defineCommand('kviLeaseAcquire', { numberOfKeys: 1, lua: ACQUIRE_LUA });
    client.defineCommand('kviLeaseRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
    const fns = client as unknown as Record<string, LeaseScript>;
    this.acquireScript = fns.kviLeaseAcquire.bind(client);
    this.releaseScript = fns.kviLeaseRelease.bind(client);
  }

  /** Endpoints this replica believes it holds (as of its last acquire/renew). */
  heldEndpoints(): string[] {
    return [...this.held];
  }

  /**
   * Acquires free (or expired) leases and renews this replica's own, in one round trip. Endpoints held by another
   * live replica are reported as such.
   */
  async acquire(endpoints: readonly string[]): Promise<LeaseResult[]> {
    if (endpoints.length === 0) return [];
    const reply = (await this.acquireScript(this.base, this.ttlMs, this.owner, ...endpoints)) as [
      string,
      string,
      number,
    ][];
    return endpoints.map((endpoint, i) => {
      const [status, owner, epoch] = reply[i];
      if (status === 'held-by-other') this.held.delete(endpoint);
      else this.held.add(endpoint);
      return { endpoint, status: status as LeaseStatus, owner, epoch: Number(epoch) };
    });
  }

  /**
   * Renews every held lease. lost: expired and now held by another replica (stop ingesting them). lapsed: expired
   * but free, so acquired again — another replica may have ingested them meanwhile, so treat them as a takeover.
   */
  async renew(): Promise<{ lost: string[]; lapsed: string[] }> {
    const results = await this.acquire(this.heldEndpoints());
    const pick = (s: LeaseStatus) => results.filter((r) => r.status === s).map((r) => r.endpoint);
    return { lost: pick('held-by-other'), lapsed: pick('acquired') };
  }

  /** Releases leases (all held ones by default), e.g. on shutdown. */
  async release(endpoints: readonly string[] = this.heldEndpoints()): Promise<number> {
    if (endpoints.length === 0) return 0;
    for (const e of endpoints) this.held.delete(e);
    return Number(await this.releaseScript(this.base, this.owner, ...endpoints));
  }
}
