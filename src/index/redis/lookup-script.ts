/**
 * The LOOKUP script of the Redis index (key schema: key-schema.ts and docs/redis.md): the hot read path, one call per
 * Score. It declares the first block's hash and derives the following block names from the tag prefix, so every key
 * it reads lives in one slot.
 */

/**
 * LOOKUP (read-only): KEYS[1] = the first block's hash. ARGV: tp, now, keys (8-byte raw keys, in prompt order), then
 * the candidate endpoint ids (none = every endpoint holding block 0). Walks blocks in order, keeping the endpoints
 * still matching, and stops at the first block none of them holds. Returns one array per endpoint with a match:
 * {eid, mask of block 0, mask of block 1, ...}; a speculative block's mask is GPU | 2^31.
 */
export const LOOKUP_LUA = `
local tp = ARGV[1]
local now = tonumber(ARGV[2])
local keys = ARGV[3]
local SPEC = 2147483649
local call, sub, byte = redis.call, string.sub, string.byte
local function maskOf(v)
  if not v then return 0 end
  if byte(v, 1) == 115 then
    if tonumber(sub(v, 2)) > now then return SPEC end
    return 0
  end
  local m = tonumber(v)
  if m then return m end
  return tonumber(string.sub(v, 1, string.find(v, ':', 1, true) - 1))
end
local function hmget(key, fields)
  if #fields <= 4000 then return redis.call('HMGET', key, unpack(fields)) end
  local out = {}
  for s = 1, #fields, 4000 do
    local part = redis.call('HMGET', key, unpack(fields, s, math.min(s + 3999, #fields)))
    for i = 1, #part do out[#out + 1] = part[i] end
  end
  return out
end
local rows, alive = {}, {}
local function join(eid, m)
  local r = {eid, m}
  rows[#rows + 1] = r
  alive[#alive + 1] = r
end
if #ARGV < 4 then
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local m = maskOf(all[i + 1])
    if m ~= 0 then join(all[i], m) end
  end
else
  local cands = {}
  for i = 4, #ARGV do cands[#cands + 1] = ARGV[i] end
  local vals = hmget(KEYS[1], cands)
  for i = 1, #cands do
    local m = maskOf(vals[i])
    if m ~= 0 then join(cands[i], m) end
  end
end
local fields = {}
for i = 1, #alive do fields[i] = alive[i][1] end
local n, o, last = #alive, 9, #keys
while n > 1 and o <= last do
  local vals = hmget(tp .. 'b' .. sub(keys, o, o + 7), fields)
  local dropped = false
  for i = 1, n do
    local m = maskOf(vals[i])
    if m == 0 then
      dropped = true
    else
      local r = alive[i]
      r[#r + 1] = m
    end
  end
  if dropped then
    local still, kept = {}, {}
    for i = 1, n do
      if maskOf(vals[i]) ~= 0 then
        still[#still + 1] = alive[i]
        kept[#kept + 1] = fields[i]
      end
    end
    alive, fields, n = still, kept, #still
  end
  o = o + 8
end
if n == 1 then
  -- The common case after a few blocks: one endpoint left, one HGET per block.
  local r, f = alive[1], fields[1]
  local len = #r
  while o <= last do
    local m = maskOf(call('HGET', tp .. 'b' .. sub(keys, o, o + 7), f))
    if m == 0 then break end
    len = len + 1
    r[len] = m
    o = o + 8
  end
end
return rows
`;
