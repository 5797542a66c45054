-- A sliding window of events (sorted set: member = a unique id, score = its time in ms, Redis clock).
-- KEYS[1] the window's key. ARGV[1] window length in ms, ARGV[2] limit, ARGV[3] "take" (count one if
-- under the limit), "check" (count nothing) or "add" (count one whatever the limit), ARGV[4] a unique id.
-- Returns 0 when under the limit (and counted, for take), else the ms until the oldest event leaves
-- the window. A sliding window has no boundary to burst across, as fixed windows have.
--- @include "now-ms"
local key, windowMs, limit, mode, id = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local now = nowMs()
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - windowMs)
if mode ~= 'add' then
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + windowMs - now)
  end
  if mode == 'check' then return 0 end
end
redis.call('ZADD', key, now, id)
redis.call('PEXPIRE', key, windowMs)
return 0
