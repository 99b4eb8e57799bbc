/**
 * The Lua scripts of the Redis index (key schema: docs/redis.md). Each script works inside ONE hash tag: it declares
 * one key of that tag (so clients and Redis Cluster route it to the right slot) and derives the other key names of
 * the same tag from ARGV[1], the tag's key prefix `<prefix>{<tag>}`. Every key a script touches therefore lives in the
 * slot of its declared key.
 *
 * Block hash `<tp>b<8 raw key bytes>`: field = endpoint id (decimal), value =
 *   "<mask>"                     confirmed, tier bit t set per tier held, every refcount 1
 *   "<mask>:<t>=<n>,<t>=<n>"     confirmed, with the refcounts of the tiers held more than once
 *   "s<expiresAt>"               speculative (tier GPU), expires at that time (ms since epoch, caller's clock)
 * Endpoint sets `<tp>e<eid>:<bucket>`: hashes whose fields are the raw keys the endpoint holds in this tag, spread over
 * ARGV[3] buckets by the key's first bytes (small hashes stay listpack-encoded: ~14 B per member instead of ~64 in
 * one big set); clearEndpoint walks only these.
 * Speculative index `<tp>s`: sorted set of "<eid>|<raw key>" by expiresAt, for sweeping.
 * Counters `<tp>n`: entries, keys, spec, expired, and per endpoint "<eid>.<tier>" and "<eid>.s".
 */

/** Shared by the write scripts: value codec, counter deltas, speculative sweep. */
const COMMON = `
local tp = ARGV[1]
local now = tonumber(ARGV[2])
local eb = tonumber(ARGV[3])
local cnt = tp .. 'n'
local specz = tp .. 's'
local delta = {}
local function d(field, n) delta[field] = (delta[field] or 0) + n end
local function decode(v)
  local c = string.find(v, ':', 1, true)
  if not c then return tonumber(v), nil end
  local refs = {}
  for t, n in string.gmatch(string.sub(v, c + 1), '(%d+)=(%d+)') do refs[tonumber(t)] = tonumber(n) end
  return tonumber(string.sub(v, 1, c - 1)), refs
end
local function encode(mask, refs)
  local s = string.format('%d', mask)
  if refs then
    local parts = {}
    for t = 0, 29 do
      local n = refs[t]
      if n and n > 1 then parts[#parts + 1] = t .. '=' .. string.format('%d', n) end
    end
    if #parts > 0 then s = s .. ':' .. table.concat(parts, ',') end
  end
  return s
end
local function popcount(m)
  local c = 0
  while m > 0 do
    if m % 2 == 1 then c = c + 1 end
    m = math.floor(m / 2)
  end
  return c
end
local esetPrefix = {}
local function eset(eid, raw)
  local p = esetPrefix[eid]
  if not p then
    p = tp .. 'e' .. eid .. ':'
    esetPrefix[eid] = p
  end
  if eb == 1 then return p .. '0' end
  local b1, b2, b3 = string.byte(raw, 1, 3)
  return p .. ((b1 + 256 * b2 + 65536 * b3) % eb)
end
local function unlinkField(bk, eid, raw)
  redis.call('HDEL', bk, eid)
  redis.call('HDEL', eset(eid, raw), raw)
  if redis.call('EXISTS', bk) == 0 then d('keys', -1) end
end
local function dropSpec(bk, eid, raw)
  unlinkField(bk, eid, raw)
  redis.call('ZREM', specz, eid .. '|' .. raw)
  d('entries', -1); d('spec', -1); d(eid .. '.s', -1)
end
local function isSpec(v) return string.byte(v, 1) == 115 end
local function sweep(limit)
  if limit <= 0 then return 0 end
  local due = redis.call('ZRANGEBYSCORE', specz, '-inf', now, 'LIMIT', 0, limit)
  local n = 0
  for i = 1, #due do
    local m = due[i]
    local bar = string.find(m, '|', 1, true)
    local eid, raw = string.sub(m, 1, bar - 1), string.sub(m, bar + 1)
    local bk = tp .. 'b' .. raw
    local v = redis.call('HGET', bk, eid)
    if v and isSpec(v) and tonumber(string.sub(v, 2)) <= now then
      dropSpec(bk, eid, raw)
      n = n + 1
    else
      redis.call('ZREM', specz, m)
    end
  end
  if n > 0 then d('expired', n) end
  return n
end
local function commit()
  for f, n in pairs(delta) do
    if n ~= 0 and redis.call('HINCRBY', cnt, f, n) == 0 then redis.call('HDEL', cnt, f) end
  end
end
`;

/**
 * APPLY: KEYS[1] = <tp>n. ARGV: tp, now, endpointBuckets, entryTtlMs (0 = none), sweepLimit, then ops:
 *   'a' eid tier keys   +1 reference per key          'r' eid tier keys   −1 reference per key
 *   'c' eid             drop every entry of eid         'v' eid expiresAt keys   speculative entries
 *   'l' eid keys        release speculative entries
 * where keys is a string of 8-byte raw keys. Returns {removesOfUnknown, released (not expired), expiredSwept}.
 */
export const APPLY_LUA = `${COMMON}
local ttl = tonumber(ARGV[4])
local expired = sweep(tonumber(ARGV[5]))
local unknown, released = 0, 0
local i = 6
while i <= #ARGV do
  local op, eid = ARGV[i], ARGV[i + 1]
  if op == 'a' or op == 'r' then
    local tier, keys = tonumber(ARGV[i + 2]), ARGV[i + 3]
    local bitv = 2 ^ tier
    local tf = eid .. '.' .. tier
    for o = 1, #keys, 8 do
      local raw = string.sub(keys, o, o + 7)
      local bk = tp .. 'b' .. raw
      local v = redis.call('HGET', bk, eid)
      if op == 'a' then
        if not v then
          if redis.call('EXISTS', bk) == 0 then d('keys', 1) end
          redis.call('HSET', bk, eid, encode(bitv, nil))
          redis.call('HSET', eset(eid, raw), raw, '')
          d('entries', 1); d(tf, 1)
        elseif isSpec(v) then
          redis.call('HSET', bk, eid, encode(bitv, nil))
          redis.call('ZREM', specz, eid .. '|' .. raw)
          d('spec', -1); d(eid .. '.s', -1); d(tf, 1)
        else
          local mask, refs = decode(v)
          if math.floor(mask / bitv) % 2 == 1 then
            refs = refs or {}
            refs[tier] = (refs[tier] or 1) + 1
          else
            mask = mask + bitv
            d('entries', 1); d(tf, 1)
          end
          redis.call('HSET', bk, eid, encode(mask, refs))
        end
        if ttl > 0 then redis.call('PEXPIRE', bk, ttl) end
      else
        local mask, refs
        if v and not isSpec(v) then mask, refs = decode(v) end
        if not mask or math.floor(mask / bitv) % 2 == 0 then
          unknown = unknown + 1
        else
          local n = (refs and refs[tier]) or 1
          if n > 1 then
            refs[tier] = n - 1
            redis.call('HSET', bk, eid, encode(mask, refs))
          else
            mask = mask - bitv
            d('entries', -1); d(tf, -1)
            if mask == 0 then
              unlinkField(bk, eid, raw)
            else
              if refs then refs[tier] = nil end
              redis.call('HSET', bk, eid, encode(mask, refs))
            end
          end
        end
      end
    end
    i = i + 4
  elseif op == 'v' then
    local exp, keys = tonumber(ARGV[i + 2]), ARGV[i + 3]
    for o = 1, #keys, 8 do
      local raw = string.sub(keys, o, o + 7)
      local bk = tp .. 'b' .. raw
      local v = redis.call('HGET', bk, eid)
      if not v then
        if redis.call('EXISTS', bk) == 0 then d('keys', 1) end
        redis.call('HSET', bk, eid, 's' .. string.format('%.17g', exp))
        redis.call('HSET', eset(eid, raw), raw, '')
        redis.call('ZADD', specz, exp, eid .. '|' .. raw)
        d('entries', 1); d('spec', 1); d(eid .. '.s', 1)
      elseif isSpec(v) and exp > tonumber(string.sub(v, 2)) then
        redis.call('HSET', bk, eid, 's' .. string.format('%.17g', exp))
        redis.call('ZADD', specz, exp, eid .. '|' .. raw)
      end
    end
    i = i + 4
  elseif op == 'l' then
    local keys = ARGV[i + 2]
    for o = 1, #keys, 8 do
      local raw = string.sub(keys, o, o + 7)
      local bk = tp .. 'b' .. raw
      local v = redis.call('HGET', bk, eid)
      if v and isSpec(v) then
        if tonumber(string.sub(v, 2)) > now then released = released + 1 end
        dropSpec(bk, eid, raw)
      end
    end
    i = i + 3
  elseif op == 'c' then
    for b = 0, eb - 1 do
      local bucket = tp .. 'e' .. eid .. ':' .. b
      local members = redis.call('HKEYS', bucket)
      for m = 1, #members do
        local raw = members[m]
        local bk = tp .. 'b' .. raw
        local v = redis.call('HGET', bk, eid)
        if v then
          if isSpec(v) then
            redis.call('ZREM', specz, eid .. '|' .. raw)
            d('entries', -1); d('spec', -1); d(eid .. '.s', -1)
          else
            local mask = decode(v)
            d('entries', -popcount(mask))
            local t = 0
            while mask > 0 do
              if mask % 2 == 1 then d(eid .. '.' .. t, -1) end
              mask = math.floor(mask / 2); t = t + 1
            end
          end
          redis.call('HDEL', bk, eid)
          if redis.call('EXISTS', bk) == 0 then d('keys', -1) end
        end
      end
      if #members > 0 then redis.call('DEL', bucket) end
    end
    i = i + 2
  else
    return redis.error_reply('kv-index: unknown op ' .. tostring(op))
  end
end
commit()
return {unknown, released, expired}
`;

/** STATS: KEYS[1] = <tp>n. ARGV: tp, now, endpointBuckets. Sweeps every due speculative entry; returns {swept, {counters...}}. */
export const STATS_LUA = `${COMMON}
local expired = sweep(1000000000)
commit()
return {expired, redis.call('HGETALL', cnt)}
`;
