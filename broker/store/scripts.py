"""The Lua scripts behind the store's atomic operations.

Each script declares every key it touches in KEYS (Redis Cluster requires it). Those that
change state in a way a second run would not repeat (take a value, write only if absent,
count) also take an *operation key*, KEYS[2], unique to one call of the store: the first
run records its outcome there for a minute, and a resend after a lost reply returns that
outcome instead of running again. So a retry is never mistaken for a replay.

Scripts go as EVAL, not EVALSHA: they are short, Redis caches them by their hash, and a
fresh master after a fail-over needs no reload.
"""

# KEYS: key, op | ARGV: op_ttl. The operation key remembers what was taken and how long
# it had left ('pttl value'; '' for "nothing there"): a resend returns the value, and an
# UNDO_TAKE can put it back.
TAKE = """
local done = redis.call('GET', KEYS[2])
if done then
  if done == '' then return false end
  return string.sub(done, string.find(done, ' ', 1, true) + 1)
end
local left = redis.call('PTTL', KEYS[1])
local value = redis.call('GETDEL', KEYS[1])
if value then
  redis.call('SET', KEYS[2], left .. ' ' .. value, 'EX', ARGV[1])
  return value
end
redis.call('SET', KEYS[2], '', 'EX', ARGV[1])
return false
"""

# KEYS: key, op, item keys... | ARGV: op_ttl, then value and ttl per item. Remembers like
# TAKE (a failed take changes nothing, so it is not remembered).
TAKE_AND_PUT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
local left = redis.call('PTTL', KEYS[1])
local value = redis.call('GETDEL', KEYS[1])
if not value then return 0 end
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 * i - 4], 'EX', ARGV[2 * i - 3])
end
redis.call('SET', KEYS[2], left .. ' ' .. value, 'EX', ARGV[1])
return 1
"""

# KEYS: key, op, item keys... The take recorded under `op` (and only that one) is undone:
# the value goes back with the time it had left, the items it wrote go. Sent when the
# take's outcome could not be confirmed (its reply lost, its replicas silent): the caller
# answers 503, so the retry must find what the take found. No record under `op`: that take
# never ran here, and nothing is touched.
UNDO_TAKE = """
local done = redis.call('GET', KEYS[2])
if not done or done == '' then return 0 end
local sep = string.find(done, ' ', 1, true)
local left = tonumber(string.sub(done, 1, sep - 1))
for i = 3, #KEYS do redis.call('DEL', KEYS[i]) end
if left > 0 then
  redis.call('SET', KEYS[1], string.sub(done, sep + 1), 'PX', left)
else
  redis.call('SET', KEYS[1], string.sub(done, sep + 1))
end
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: key, op, item keys... | ARGV: op_ttl, field, expected ('' = key absent), value,
# ttl, then value and ttl per item. A failed comparison changes nothing, so only success
# is remembered; the record is only read (cjson.decode), never re-encoded.
COMPARE_AND_PUT = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {1} end
local current = redis.call('GET', KEYS[1])
local ok
if ARGV[3] == '' then
  ok = not current
elseif current then
  ok = tostring(cjson.decode(current)[ARGV[2]]) == ARGV[3]
else
  ok = false
end
if not ok then return {0, current} end
redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[5])
for i = 3, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 * i], 'EX', ARGV[2 * i + 1])
end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
return {1}
"""

# KEYS: key, op | ARGV: op_ttl, value, ttl
PUT_NEW = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[3]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
  return 1
end
return 0
"""

# KEYS: key, op | ARGV: op_ttl, ttl. The first increment of a window arms its TTL.
INCR = """
local done = redis.call('GET', KEYS[2])
if done then return tonumber(done) end
local count = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
redis.call('SET', KEYS[2], count, 'EX', ARGV[1])
return count
"""

# KEYS: index | ARGV: member, expires_at, now. Idempotent: a rerun sets the same score.
# The index lives exactly as long as its longest-lived member.
INDEX_ADD = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  local left = math.ceil(tonumber(last[2]) - tonumber(ARGV[3]))
  if left > 0 then redis.call('EXPIRE', KEYS[1], left) else redis.call('DEL', KEYS[1]) end
end
"""

# KEYS: schedule, op | ARGV: op_ttl, now, lease_until, limit. The claimed members are
# remembered (as a JSON list) so that a resend returns the same claim; claiming nothing
# changes nothing, so it is not remembered (couriers look every second).
CLAIM_DUE = """
local done = redis.call('GET', KEYS[2])
if done then return cjson.decode(done) end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[4]))
if #due == 0 then return due end
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[3], member) end
redis.call('SET', KEYS[2], cjson.encode(due), 'EX', ARGV[1])
return due
"""
