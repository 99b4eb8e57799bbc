/**
 * The Lua script of the Redis in-flight ledger (redis-ledger.ts): one script, one call per ledger operation, so each
 * operation is one round trip and atomic (Redis runs a script to its end before any other command).
 *
 * KEYS[1] is the ledger's base `<prefix>{ledger}`; every key the script touches is derived from it and so carries the
 * same hash tag — one slot, one master on a cluster (see redis-ledger.ts for the trade-off):
 *   <base>r  hash   id → the reservation, packed: endpoint, prefill, decode, ttl, predicted, prompt, created, expires,
 *                   done ("0"/"1"), separated by "\t" (an endpoint identity holds no tab: src/common/endpoint.ts)
 *   <base>x  zset   id scored by its expiry (ms)
 *   <base>p  hash   endpoint → in-flight prefill tokens (reservations whose PrefillComplete has not come)
 *   <base>d  hash   endpoint → in-flight decode blocks
 *   <base>n  hash   endpoint → live reservations (the three fields go when it reaches 0)
 *
 * Every call first retires what is due (expiry ≤ now): a reservation whose caller vanished stops counting at its TTL
 * whichever replica calls next. At most PURGE_PER_CALL per call, earliest first, so that one call never holds Redis
 * (single-threaded, shared by every replica and the index) for long: a larger backlog (that many reservations
 * expiring between two ledger calls) still counts until the next calls drain it. `now` is ARGV[2], or the server's TIME when ARGV[2] is empty (the default: replica
 * clocks then do not matter; Redis 7 replicates a script's effects, so TIME before writes is allowed).
 *
 * ARGV[1] is the operation; every reply starts with {status, expired by this call, live reservations after it}:
 *   reserve   ARGV: op, now, max, id, endpoint, prefill, decode, ttl, predicted, prompt
 *             → {'ok'|'full'|'dup', expired, live, now}
 *   prefill   ARGV: op, now, id → {'ok'|'missing'|'done', expired, live, packed}
 *   release   ARGV: op, now, id → {'ok'|'missing', expired, live, packed}      (also cancel: the caller counts)
 *   loads     ARGV: op, now, endpoints... → {'ok', expired, live, prefill[], decode[], count[]}
 */
/** Expired reservations one script call retires at most (~6 Redis commands each inside the script). */
export const PURGE_PER_CALL = 1000;

export const LEDGER_LUA = `
local base = KEYS[1]
local R, X, P, D, N = base .. 'r', base .. 'x', base .. 'p', base .. 'd', base .. 'n'
local op = ARGV[1]
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function fields(packed)
  local f = {}
  for part in string.gmatch(packed, '[^\\t]+') do f[#f + 1] = part end
  return f
end

-- Adds v to an endpoint's sum. Nothing for 0: -0 would reach Redis as "-0", which HINCRBY refuses (an error part-way
-- through a script is not rolled back).
local function add(h, e, v)
  if v ~= 0 then redis.call('HINCRBY', h, e, v) end
end

-- Takes a reservation's remaining load off its endpoint, and the reservation out of the ledger.
local function drop(id, f)
  local e = f[1]
  if f[9] ~= '1' then add(P, e, 0 - tonumber(f[2])) end
  add(D, e, 0 - tonumber(f[3]))
  if redis.call('HINCRBY', N, e, -1) <= 0 then
    redis.call('HDEL', P, e)
    redis.call('HDEL', D, e)
    redis.call('HDEL', N, e)
  end
  redis.call('HDEL', R, id)
  redis.call('ZREM', X, id)
end

local expired = 0
local due = redis.call('ZRANGEBYSCORE', X, '-inf', now, 'LIMIT', 0, ${PURGE_PER_CALL})
for _, id in ipairs(due) do
  local packed = redis.call('HGET', R, id)
  if packed then
    drop(id, fields(packed))
    expired = expired + 1
  else
    redis.call('ZREM', X, id)
  end
end

if op == 'loads' then
  local es = {}
  for i = 3, #ARGV do es[#es + 1] = ARGV[i] end
  local p, d, n = {}, {}, {}
  if #es > 0 then
    p = redis.call('HMGET', P, unpack(es))
    d = redis.call('HMGET', D, unpack(es))
    n = redis.call('HMGET', N, unpack(es))
  end
  for i = 1, #es do
    p[i] = tonumber(p[i]) or 0
    d[i] = tonumber(d[i]) or 0
    n[i] = tonumber(n[i]) or 0
  end
  return {'ok', expired, redis.call('ZCARD', X), p, d, n}
end

if op == 'reserve' then
  local id, e = ARGV[4], ARGV[5]
  local live = redis.call('ZCARD', X)
  if live >= tonumber(ARGV[3]) then return {'full', expired, live, now} end
  if redis.call('HEXISTS', R, id) == 1 then return {'dup', expired, live, now} end
  local expires = now + tonumber(ARGV[8])
  redis.call('HSET', R, id, table.concat({e, ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], now, expires, '0'}, '\\t'))
  redis.call('ZADD', X, expires, id)
  add(P, e, tonumber(ARGV[6]))
  add(D, e, tonumber(ARGV[7]))
  redis.call('HINCRBY', N, e, 1)
  return {'ok', expired, live + 1, now}
end

local id = ARGV[3]
local packed = redis.call('HGET', R, id)
if not packed then return {'missing', expired, redis.call('ZCARD', X), ''} end
local f = fields(packed)
if op == 'prefill' then
  if f[9] == '1' then return {'done', expired, redis.call('ZCARD', X), packed} end
  f[9] = '1'
  packed = table.concat(f, '\\t')
  redis.call('HSET', R, id, packed)
  add(P, f[1], 0 - tonumber(f[2]))
  return {'ok', expired, redis.call('ZCARD', X), packed}
end
if op == 'release' then
  drop(id, f)
  return {'ok', expired, redis.call('ZCARD', X), packed}
end
return redis.error_reply('ledger: unknown operation ' .. tostring(op))
`;
