-- Upgrade (queue layout 1 -> 2): one room's occupant, from its own string to the rooms hash.
-- KEYS[1] ch:{clinic}:room:<room> (layout 1: the id of the ticket called there), KEYS[2] ch:{clinic}:rooms
-- (hash room -> ticket id). ARGV[1] the room. The hash wins when it already names the room (a change made
-- since by this version). Returns 1 when it converted, 0 when the old key was gone (another node did it).
local old = redis.call('GET', KEYS[1])
if not old then return 0 end
redis.call('HSETNX', KEYS[2], ARGV[1], old)
redis.call('DEL', KEYS[1])
return 1
