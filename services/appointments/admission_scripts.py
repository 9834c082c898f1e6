"""The Lua scripts of the booking admission gate (:mod:`services.appointments.admission`).

Every script of one schedule touches keys under the schedule's hash tag, plus the one
global index of leases (``adm:leases``) that the reconciler scans: the deployment runs a
single Redis (docs/architecture.md §3). A lease is stored as
``slot|pool|expires_ms|owner|idempotency ref`` under the patient in the schedule's
``leases`` hash, and as ``schedule<US>patient`` scored by its expiry in the index.
"""

from __future__ import annotations

from shared.ratelimit import GCRA_FUNCTIONS

# KEYS: state hash, patients set, leases hash, the lease index, the waiting room's queue,
# the attempt's "counted" marker, its k attempt-limit keys, then one list of open slot ids
# per pool in ARGV order.
# ARGV: patient id, wanted slot id ('' for any), lease ms ('' for no lease), lease owner,
# idempotency ref, waiting-room capacity ('0' for none), '1' when a ticket is served,
# schedule id, k, '1' to count the request once (by its marker), the marker's ttl (s),
# then per attempt limit its interval and bucket (µs), then the pool names.
# -> {'uninitialized'} | {'limited', index of the refusing limit, wait ms} | {'duplicate'}
#    | {'leased', lease} | {'busy'} | {'admitted', pool, slot} | {'sold_out', in flight}
ADMIT = (
    GCRA_FUNCTIONS
    + """
if redis.call('HEXISTS', KEYS[1], 'ready') == 0 then return {'uninitialized'} end
local k = tonumber(ARGV[9])
if k > 0 then
  local again = ARGV[10] == '1'
    and not redis.call('SET', KEYS[6], '1', 'NX', 'EX', tonumber(ARGV[11]))
  if not again then
    local keys, intervals, buckets = {}, {}, {}
    for i = 1, k do
      keys[i] = KEYS[6 + i]
      intervals[i] = tonumber(ARGV[10 + 2 * i])
      buckets[i] = tonumber(ARGV[11 + 2 * i])
    end
    local hit = gcra_hit(gcra_now(''), keys, intervals, buckets)
    if hit[1] == 0 then
      if ARGV[10] == '1' then redis.call('DEL', KEYS[6]) end
      return {'limited', hit[2], hit[3]}
    end
  end
end
local first = 7 + k
local names = 12 + 2 * k - first  -- ARGV[i + names] is the name of the pool at KEYS[i]
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  local lease = redis.call('HGET', KEYS[3], ARGV[1])
  if lease then return {'leased', lease} end
  return {'duplicate'}
end
local cap = tonumber(ARGV[6])
local queued = cap > 0 and ARGV[7] ~= '1'
local in_flight = redis.call('HLEN', KEYS[3])
if ARGV[2] == '' then
  local left = 0
  for i = first, #KEYS do left = left + redis.call('LLEN', KEYS[i]) end
  if left == 0 then
    if cap > 0 and in_flight > 0 then return {'busy'} end
    return {'sold_out', tostring(in_flight)}
  end
end
if queued and (in_flight >= cap or redis.call('ZCARD', KEYS[5]) > 0) then return {'busy'} end
for i = first, #KEYS do
  local slot = false
  if ARGV[2] ~= '' then
    if redis.call('LREM', KEYS[i], 1, ARGV[2]) == 1 then slot = ARGV[2] end
  else
    slot = redis.call('LPOP', KEYS[i])
  end
  if slot then
    local pool = ARGV[i + names]
    redis.call('SADD', KEYS[2], ARGV[1])
    if ARGV[3] ~= '' then
      local t = redis.call('TIME')
      local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
      local expires = string.format('%.0f', ms)
      local lease = slot .. '|' .. pool .. '|' .. expires .. '|' .. ARGV[4] .. '|' .. ARGV[5]
      redis.call('HSET', KEYS[3], ARGV[1], lease)
      redis.call('ZADD', KEYS[4], expires, ARGV[8] .. '\\31' .. ARGV[1])
    end
    return {'admitted', pool, slot}
  end
end
return {'sold_out', tostring(in_flight)}
"""
)

# KEYS: state hash, patients set, the pool's list, leases hash, lease index
# ARGV: patient id, slot id ('' for none), schedule id
RELEASE = """
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[3] .. '\\31' .. ARGV[1])
if redis.call('HEXISTS', KEYS[1], 'ready') == 0 then return 0 end
local removed = redis.call('SREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then
  redis.call('LREM', KEYS[3], 0, ARGV[2])
  redis.call('LPUSH', KEYS[3], ARGV[2])
end
return removed
"""

# KEYS: leases hash, lease index; ARGV: patient id, schedule id, the lease ('' for any)
SETTLE = """
local lease = redis.call('HGET', KEYS[1], ARGV[1])
if not lease or (ARGV[3] ~= '' and lease ~= ARGV[3]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[2] .. '\\31' .. ARGV[1])
return 1
"""

# A lease whose request died, after Mongo was asked. KEYS: state hash, patients set,
# leases hash, lease index, the lease's pool list. ARGV: patient id, schedule id, the
# lease as read, '1' if the patient holds a booking in Mongo, '1' if the slot is open there.
RECLAIM = """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[2] .. '\\31' .. ARGV[1])
if redis.call('HEXISTS', KEYS[1], 'ready') == 0 then return 1 end
if ARGV[4] ~= '1' then redis.call('SREM', KEYS[2], ARGV[1]) end
if ARGV[5] == '1' then
  local slot = string.match(ARGV[3], '^([^|]*)')
  redis.call('LREM', KEYS[5], 0, slot)
  redis.call('LPUSH', KEYS[5], slot)
end
return 1
"""

# A retry with the lease's own idempotency key takes the lease over.
# KEYS: leases hash, lease index; ARGV: patient id, schedule id, the lease as read,
# the new lease, its expiry (ms)
TAKE_OVER = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2] .. '\\31' .. ARGV[1])
return 1
"""

# KEYS: state hash, patients set, leases hash, pool lists...; ARGV: force, pool count,
# then per pool its name and slot count followed by the slot ids, then the patients.
# Live leases survive a rebuild: their patients stay guarded and their slots stay out.
INITIALIZE = """
if redis.call('HEXISTS', KEYS[1], 'ready') == 1 and ARGV[1] == '0' then return 0 end
local leased = {}
local holders = redis.call('HKEYS', KEYS[3])
for _, lease in ipairs(redis.call('HVALS', KEYS[3])) do
  leased[string.match(lease, '^([^|]*)')] = true
end
redis.call('DEL', KEYS[1], KEYS[2])
for i = 4, #KEYS do redis.call('DEL', KEYS[i]) end
local at = 3
for p = 1, tonumber(ARGV[2]) do
  local count = tonumber(ARGV[at + 1])
  at = at + 2
  for s = 0, count - 1 do
    if not leased[ARGV[at + s]] then redis.call('RPUSH', KEYS[3 + p], ARGV[at + s]) end
  end
  at = at + count
end
for i = at, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
for _, patient in ipairs(holders) do redis.call('SADD', KEYS[2], patient) end
redis.call('HSET', KEYS[1], 'ready', '1')
return 1
"""

# KEYS: state hash, the pool's list; ARGV: slot ids (nothing when the state is not loaded)
ADD = """
if redis.call('HEXISTS', KEYS[1], 'ready') == 0 then return 0 end
for i = 1, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
return #ARGV
"""

# KEYS: state hash, the target pool's list, then the source list of each slot in ARGV order
# ARGV: slot ids. A slot already handed out (not in its list) stays out: an admitted
# booking that has not committed yet keeps it.
MOVE = """
if redis.call('HEXISTS', KEYS[1], 'ready') == 0 then return 0 end
local moved = 0
for i = 1, #ARGV do
  if redis.call('LREM', KEYS[2 + i], 1, ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i])
    moved = moved + 1
  end
end
return moved
"""
