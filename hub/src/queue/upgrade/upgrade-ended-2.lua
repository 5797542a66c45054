-- Upgrade (queue layout 1 -> 2): when one ticket ended, from its own string (kept 25 h) to the ended sorted set.
-- KEYS[1] ch:{clinic}:ended:<ticket> (layout 1: ms), KEYS[2] ch:{clinic}:ended (ticket id -> ms). ARGV[1] the
-- ticket id. An entry already in the set stays. Returns 1 when it converted, 0 when the old key was gone.
local old = redis.call('GET', KEYS[1])
if not old then return 0 end
redis.call('ZADD', KEYS[2], 'NX', string.format('%.0f', tonumber(old)), ARGV[1])
redis.call('DEL', KEYS[1])
return 1
