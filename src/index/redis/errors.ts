/** Errors of the Redis index that callers act on. */

/**
 * Redis could not answer (down, unreachable, timed out, cluster not serving the slot, loading). The API answers
 * degraded or UNAVAILABLE; ingest marks the batch's endpoints for resync (RedisIndex.pendingResync()).
 */
export class IndexUnavailableError extends Error {
  readonly code = 'INDEX_UNAVAILABLE';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IndexUnavailableError';
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
