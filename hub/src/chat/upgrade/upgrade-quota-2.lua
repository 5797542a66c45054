-- Upgrade (chat layout 1 -> 2): one quota counter, from a key per window to one key per scope.
-- KEYS[1] ch:{clinic}:chat:quota:<what>:<scope>:<id>:<window> (layout 1: the count, a plain integer),
-- KEYS[2] ch:{clinic}:chat:quota:<what>:<scope>:<id> (layout 2: "<window>:<count>", lib.lua takeQuota).
-- ARGV[1] the window of KEYS[1] (from its name). A value with a ':' is a layout-2 counter whose id ends in
-- ":<digits>", not an old one: left alone. Counts of the same window add up (both were taken in it); a newer
-- window already counted stays; an older one is replaced. Returns 1 when it converted, 0 otherwise.
local old = redis.call('GET', KEYS[1])
if not old or not string.match(old, '^%d+$') then return 0 end
local window = tonumber(ARGV[1])
local count = tonumber(old)
local ttl = redis.call('PTTL', KEYS[1])
local current = redis.call('GET', KEYS[2])
local write = true
if current then
  local currentWindow, currentCount = string.match(current, '^(%d+):(%d+)$')
  if currentWindow and tonumber(currentWindow) == window then
    count = count + tonumber(currentCount)
    ttl = math.max(ttl, redis.call('PTTL', KEYS[2]))
  elseif currentWindow and tonumber(currentWindow) > window then
    write = false
  end
end
if write then
  if ttl > 0 then
    redis.call('SET', KEYS[2], string.format('%d:%d', window, count), 'PX', ttl)
  else
    redis.call('SET', KEYS[2], string.format('%d:%d', window, count))
  end
end
redis.call('DEL', KEYS[1])
return 1
