/** The PREPARE script: the registry of endpoint and tier ids and of the tags endpoints hold entries in (tag "m"). */

/**
 * PREPARE (registry slot): KEYS[1] = <prefix>{m}eid. ARGV: prefix, nEndpoints, nTiers, nPairs, nClears, now (the
 * caller's clock, ms: replicas run NTP-synchronised clocks already, and TIME would need one more ACL right), then the
 * endpoint names, the tier names, nPairs (endpoint name, tag) pairs to register (the endpoint has entries in that
 * tag), and the endpoint names whose tags a clear must visit. Assigns ids to unknown names (endpoints from the generation start, tiers
 * from 8: 0–7 are the fixed known tiers) and returns {{endpoint ids..., tier ids...}, {tags of clear 1}, ...,
 * generation}. Ids are never reused, so every replica caches them forever.
 *
 * Generations (issue 17, bug 2): the endpoint sequence starts at the clock in milliseconds, not at 1, and
 * `{m}gen` records that start. If the registry is lost while block keys survive (an `allkeys-*` eviction policy, a
 * DEL), a new sequence starts at the clock again, far above every id the lost one handed out (unless it registered
 * more than 1,000 endpoints per second), so a surviving entry is never credited to a new endpoint; and the changed
 * generation tells every replica to drop its cached ids and resynchronise (RedisIndex.checkRegistry).
 */
export const PREPARE_LUA = `
local m = ARGV[1] .. '{m}'
local ne, nt, np, nc = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local gen = redis.call('GET', m .. 'gen')
if not gen or redis.call('EXISTS', m .. 'eseq') == 0 then
  local start = tonumber(ARGV[6])
  local seq = tonumber(redis.call('GET', m .. 'eseq') or '0')
  if seq < start then redis.call('SET', m .. 'eseq', string.format('%d', start)) end
  gen = string.format('%d', math.max(seq, start))
  redis.call('SET', m .. 'gen', gen)
end
local function intern(kind, name)
  local ids, names, seq = m .. kind .. 'id', m .. kind .. 'name', m .. kind .. 'seq'
  local id = redis.call('HGET', ids, name)
  if id then return tonumber(id) end
  if kind == 't' and redis.call('EXISTS', seq) == 0 then redis.call('SET', seq, 7) end
  id = redis.call('INCR', seq)
  if kind == 't' and id > 29 then return redis.error_reply('kv-index: too many distinct storage tiers (max 30)') end
  redis.call('HSET', ids, name, id)
  redis.call('HSET', names, id, name)
  return id
end
local ids = {}
local a = 7
for i = 1, ne do ids[#ids + 1] = intern('e', ARGV[a]); a = a + 1 end
for i = 1, nt do
  local id = intern('t', ARGV[a])
  if type(id) == 'table' then return id end
  ids[#ids + 1] = id; a = a + 1
end
for i = 1, np do
  local eid = intern('e', ARGV[a])
  redis.call('SADD', m .. 'et' .. eid, ARGV[a + 1])
  redis.call('SADD', m .. 'tags', ARGV[a + 1])
  a = a + 2
end
local out = {ids}
for i = 1, nc do
  out[#out + 1] = redis.call('SMEMBERS', m .. 'et' .. intern('e', ARGV[a]))
  a = a + 1
end
out[#out + 1] = gen
return out
`;
