import { UnsafeEvictionPolicyError } from './errors.js';
import type { KeySchema } from './key-schema.js';
import type { RedisConnection } from './redis-client.js';
import type { SharedIds } from './shared-ids.js';

/**
 * Whether the ids this process wrote under (its cached endpoint ids, at most 64 of them) still map both ways in the
 * registry (`eid`: name → id, `ename`: id → name). After a partial loss — some registry hashes evicted while the
 * generation survived — they do not, and the ids must not be used again (issue 17, bug 2).
 */
export async function registryMapsBack(
  conn: RedisConnection,
  schema: KeySchema,
  ids: SharedIds,
  written: Iterable<string>,
): Promise<boolean> {
  const names = [...written].slice(0, 64).filter((e) => ids.endpointId(e) !== undefined);
  if (names.length === 0) return true;
  const idList = names.map((e) => String(ids.endpointId(e)));
  const [byName, byId] = await Promise.all([
    conn.hmget(schema.meta('eid'), ...names),
    conn.hmget(schema.meta('ename'), ...idList),
  ]);
  return names.every((e, i) => byName[i] === idList[i] && byId[i] === e);
}

/**
 * Refuses a server whose maxmemory-policy may evict any key (allkeys-*): the registry and the leases would go with the
 * block keys (issue 17, bug 2). Closes the connection first, so a refused start leaves nothing open.
 */
export async function refuseUnsafeEviction(conn: RedisConnection, allow: boolean): Promise<void> {
  const unsafe = (await conn.evictionPolicies()).find((p) => p.startsWith('allkeys-'));
  if (!unsafe || allow) return;
  await conn.close();
  throw new UnsafeEvictionPolicyError(unsafe);
}
