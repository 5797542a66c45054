-- How many people are in a consultation's room on this node, for the hub's
-- views: `participants` and `status` (live while anyone is in, waiting when
-- the room empties). Never over `ended`, never on a consultation the hub did
-- not create (tests and direct joins have no meta hash).
-- KEYS[1] meta  ARGV[1] participants
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'ended' then return 0 end
local count = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'participants', count, 'status', count > 0 and 'live' or 'waiting')
return 1
