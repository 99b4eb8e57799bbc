import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { asUnavailable, IndexUnavailableError } from '../../index/index.js';
import {
  checkCount,
  LedgerError,
  MAX_RESERVATION_TTL_MS,
  type InflightLedger,
  type InflightLoad,
  type NewReservation,
  type Reservation,
  type RetireReason,
} from './inflight.js';
import { LEDGER_LUA } from './ledger-script.js';

/**
 * The in-flight ledger in Redis (issue 14 §1): every replica of the service reads and writes the same reservations,
 * so a reservation made by Select on one replica is priced by the Selects of all, and PrefillComplete / Release may
 * reach any replica. Each operation is one call of one Lua script (ledger-script.ts): one round trip, atomic — a
 * refused or failed call changes nothing (the script checks before it writes, and Redis runs it whole).
 *
 * Placement: every ledger key carries the hash tag `{ledger}`, so each script touches one slot and works unchanged on
 * a single server and on Redis Cluster. The trade-off: on a cluster the whole ledger lives on one master, which
 * serves one small script per Select (and one more per reservation) from every replica; spreading it (a tag per
 * endpoint) would need a script per slot for one Select's candidates, i.e. more round trips, for a ledger whose size
 * is bounded by select.maxReservations. The index's own keys stay spread (placement 'anchor').
 *
 * Expiry: a reservation's TTL is enforced inside the scripts (a sorted set of expiry times, purged by every call), so
 * a vanished caller's reservation stops counting at its TTL on every replica (at most PURGE_PER_CALL per call: a
 * larger backlog drains over the next calls). Times are the Redis server's clock
 * (TIME) unless a clock is injected (tests): replica clocks do not matter.
 *
 * What stays per replica: `retired` counts the retirements this replica's calls performed (its PrefillCompletes and
 * Releases, and the expiries its scripts happened to purge), so the sum over replicas is the ledger's total, each
 * counted once. `size()` is the ledger-wide live count as of this replica's last ledger call (every script replies
 * with it): a cached value, refreshed by each Select, never a round trip of its own.
 *
 * Failures: a Redis error becomes IndexUnavailableError (UNAVAILABLE at the API). A reserve whose reply was lost (a
 * timeout after Redis applied it) leaves a reservation nobody holds the id of: this ledger tries to cancel it, and
 * its TTL bounds it otherwise.
 */

export type LedgerOp = 'loads' | 'reserve' | 'prefill' | 'release' | 'cancel';
export const LEDGER_OPS: readonly LedgerOp[] = ['loads', 'reserve', 'prefill', 'release', 'cancel'];

export interface RedisLedgerOptions {
  /** The ioredis connection (a single server or a Cluster), e.g. the Redis index's (RedisIndex.redis). */
  client: Redis | Cluster;
  /** Key prefix, as the index's (`kvi:`): keys are `<prefix>{ledger}…`. */
  keyPrefix: string;
  maxReservations: number;
  /** Milliseconds now; default: the Redis server's TIME, read inside each script. */
  clock?: () => number;
  /** Id source (tests); default 16 random bytes as hex. */
  newId?: () => string;
}

type LedgerScript = (key: string, ...args: (string | number)[]) => Promise<unknown>;
type Reply = [string, number, number, ...unknown[]];

/** Attempts at a fresh id when the drawn one is taken (128 random bits: never, unless newId repeats itself). */
const ID_ATTEMPTS = 4;

export class RedisInflightLedger implements InflightLedger {
  readonly retired: Record<RetireReason, number> = { prefill_complete: 0, release: 0, ttl: 0 };
  /** Script calls made, by operation: each is one Redis round trip. */
  readonly roundTrips: Record<LedgerOp, number> = { loads: 0, reserve: 0, prefill: 0, release: 0, cancel: 0 };
  private readonly base: string;
  private readonly script: LedgerScript;
  private readonly newId: () => string;
  private live = 0;

  constructor(private readonly options: RedisLedgerOptions) {
    if (/[{}]/.test(options.keyPrefix)) throw new RangeError(`key prefix must not contain '{' or '}'`);
    this.base = `${options.keyPrefix}{ledger}`;
    this.newId = options.newId ?? (() => randomBytes(16).toString('hex'));
    options.client.defineCommand('kviLedger', { numberOfKeys: 1, lua: LEDGER_LUA });
    this.script = (options.client as unknown as Record<string, LedgerScript>).kviLedger.bind(options.client);
  }

  async reserve(r: NewReservation): Promise<Reservation> {
    checkCount('uncached_prefill_tokens', r.uncachedPrefillTokens);
    checkCount('expected_decode_blocks', r.expectedDecodeBlocks);
    checkCount('predicted_cached_tokens', r.predictedCachedTokens);
    checkCount('prompt_tokens', r.promptTokens);
    if (!Number.isInteger(r.ttlMs) || r.ttlMs < 1 || r.ttlMs > MAX_RESERVATION_TTL_MS) {
      throw new LedgerError(
        'invalid_argument',
        'reservation_ttl_ms',
        `must be 1..${MAX_RESERVATION_TTL_MS}, got ${r.ttlMs}`,
      );
    }
    if (r.endpoint.length === 0 || /[\t\n]/.test(r.endpoint))
      throw new LedgerError('invalid_argument', 'endpoint', 'must be a non-empty endpoint identity');
    for (let attempt = 0; attempt < ID_ATTEMPTS; attempt++) {
      const id = this.newId();
      const args = [
        ...[this.options.maxReservations, id, r.endpoint, r.uncachedPrefillTokens, r.expectedDecodeBlocks],
        ...[r.ttlMs, r.predictedCachedTokens, r.promptTokens],
      ];
      let reply: Reply;
      try {
        reply = await this.call('reserve', args);
      } catch (err) {
        // The reply may be lost after Redis stored it: nobody would hold its id. Undo it if Redis answers (else TTL).
        this.cancel(id).catch(() => undefined);
        throw err;
      }
      const [status, , live, now] = reply as [string, number, number, number];
      if (status === 'full') {
        throw new LedgerError(
          'resource_exhausted',
          'reserve',
          `${live} reservations in flight, at most select.maxReservations (${this.options.maxReservations})`,
        );
      }
      if (status === 'ok') return { ...r, id, createdAt: now, expiresAt: now + r.ttlMs, prefillDone: false };
    }
    throw new LedgerError('resource_exhausted', 'reserve', `no free reservation id after ${ID_ATTEMPTS} attempts`);
  }

  async prefillComplete(id: string): Promise<Reservation> {
    const [status, , , packed] = await this.call('prefill', [id]);
    if (status === 'missing') throw notFound(id);
    if (status === 'done') {
      throw new LedgerError(
        'failed_precondition',
        'reservation_id',
        `reservation ${id} already had its PrefillComplete`,
      );
    }
    this.retired.prefill_complete++;
    return unpack(id, packed as string);
  }

  async release(id: string): Promise<Reservation> {
    const [status, , , packed] = await this.call('release', [id]);
    if (status === 'missing') throw notFound(id);
    this.retired.release++;
    return unpack(id, packed as string);
  }

  async cancel(id: string): Promise<void> {
    await this.call('cancel', [id]);
  }

  async loads(endpoints: readonly string[]): Promise<InflightLoad[]> {
    const reply = await this.call('loads', endpoints);
    const [p, d, n] = reply.slice(3) as [number[], number[], number[]];
    return endpoints.map((_, i) => ({ prefillTokens: p[i], decodeBlocks: d[i], reservations: n[i] }));
  }

  /** Live reservations in the whole ledger, as of this replica's last ledger call (no round trip). */
  size(): number {
    return this.live;
  }

  /** One script call: one round trip. Takes up the expiries it purged and the live count. */
  private async call(op: LedgerOp, args: readonly (string | number)[]): Promise<Reply> {
    const now = this.options.clock ? String(this.options.clock()) : '';
    this.roundTrips[op]++;
    let reply: Reply;
    try {
      // cancel is a release the caller does not count as retired.
      reply = (await this.script(this.base, op === 'cancel' ? 'release' : op, now, ...args)) as Reply;
    } catch (err) {
      const e = asUnavailable(err, op);
      // Down, timed out or a transient reply: the index's error kind (UNAVAILABLE at the API), named for the ledger.
      throw e instanceof IndexUnavailableError
        ? new IndexUnavailableError(
            `redis in-flight ledger unavailable (${op}): ${(e.cause as Error | undefined)?.message ?? e.message}`,
          )
        : e;
    }
    this.retired.ttl += Number(reply[1]);
    this.live = Number(reply[2]);
    return reply;
  }
}

function notFound(id: string): LedgerError {
  return new LedgerError('not_found', 'reservation_id', `no reservation ${id} (unknown, released or expired)`);
}

/** A reservation from the script's packed fields (ledger-script.ts). */
function unpack(id: string, packed: string): Reservation {
  const f = packed.split('\t');
  return {
    id,
    endpoint: f[0],
    uncachedPrefillTokens: Number(f[1]),
    expectedDecodeBlocks: Number(f[2]),
    ttlMs: Number(f[3]),
    predictedCachedTokens: Number(f[4]),
    promptTokens: Number(f[5]),
    createdAt: Number(f[6]),
    expiresAt: Number(f[7]),
    prefillDone: f[8] === '1',
  };
}
