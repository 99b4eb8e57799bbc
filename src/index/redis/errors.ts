/** Errors of the Redis index that callers act on. */
import { IndexerError } from '../../common/index.js';

/**
 * Redis could not answer (down, unreachable, timed out, cluster not serving the slot, loading). The API answers
 * degraded or UNAVAILABLE; ingest marks the batch's endpoints for resync (RedisIndex.pendingResync()).
 */
export class IndexUnavailableError extends IndexerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', '', message, options);
  }
}

/**
 * Redis replies that mean "not available right now" rather than a bug in a script or a command. "non local key":
 * a script reached a key of its slot that is being migrated to another master (resharding) — retry later.
 */
const TRANSIENT_REPLY = /^(CLUSTERDOWN|LOADING|MASTERDOWN|BUSY|TRYAGAIN|READONLY|NOREPLICAS)\b|non local key/;

/** Wraps connection, timeout and transient errors as IndexUnavailableError; anything else is returned as is. */
export function asUnavailable(err: unknown, what: string): Error {
  if (err instanceof IndexUnavailableError) return err;
  const e = err instanceof Error ? err : new Error(String(err));
  const isReply = e.name === 'ReplyError';
  if (isReply && !TRANSIENT_REPLY.test(e.message)) return e;
  return new IndexUnavailableError(`redis index unavailable (${what}): ${e.message}`, { cause: e });
}

/**
 * Redis may evict any key, the endpoint registry and leases included (issue 17, bug 2). The message is the reason of
 * the start-up failure line (`index.redisUrl redis://…: maxmemory-policy allkeys-lru is unsafe: …`), so it starts
 * with Redis's setting and its value: that is what the operator changes.
 */
export class UnsafeEvictionPolicyError extends IndexerError {
  constructor(readonly policy: string) {
    super(
      'failed_precondition',
      'index.redisUrl',
      `maxmemory-policy ${policy} is unsafe: Redis may evict the endpoint-id registry and the leases, and then credit one ` +
        `pod's cached blocks to another; set maxmemory-policy to noeviction, or volatile-lru with index.redisEntryTtlMs > 0 ` +
        `so that only block keys carry a TTL (docs/redis.md, "Eviction")`,
    );
  }
}
