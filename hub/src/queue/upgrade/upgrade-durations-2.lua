-- Upgrade (queue layout 1 -> 2): one department's measured consultations, from a list to the durations hash.
-- KEYS[1] ch:{clinic}:durations:<dept> (layout 1: list of ms, newest first), KEYS[2] ch:{clinic}:durations
-- (hash dept -> ms, newest first, comma-separated). ARGV[1] the department. Values this version measured
-- since are newer: they stay first, the old ones follow, 20 kept. Returns how many old values it read.
local old = redis.call('LRANGE', KEYS[1], 0, -1)
if #old == 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
local values = {}
for v in string.gmatch(redis.call('HGET', KEYS[2], ARGV[1]) or '', '[^,]+') do values[#values + 1] = v end
for _, v in ipairs(old) do values[#values + 1] = string.format('%.0f', tonumber(v)) end
while #values > 20 do table.remove(values) end
redis.call('HSET', KEYS[2], ARGV[1], table.concat(values, ','))
redis.call('DEL', KEYS[1])
return #old
