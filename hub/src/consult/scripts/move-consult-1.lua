-- Moves a consultation whose media-server node has gone to another node (where its
-- room starts empty: status waiting), unless it ended or someone moved it meanwhile.
-- KEYS[1] meta; ARGV[1] the node it was on, ARGV[2] the new node.
-- Returns the node it is on now ("" when it has ended).
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'ended' then return '' end
local node = redis.call('HGET', KEYS[1], 'node')
if node ~= ARGV[1] then return node end
redis.call('HSET', KEYS[1], 'node', ARGV[2], 'status', 'waiting')
return ARGV[2]
