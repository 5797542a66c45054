-- Second step of the presence sweep (presence-heartbeat first), per member present: forgets the member's chat
-- sockets on nodes without a fresh heartbeat, so a clinician of a node that died goes offline. At start-up
-- ARGV[4] = "1" also forgets the sockets this node id had before (the node started again under the same id).
--   KEYS[1] ch:{clinic}:chat:presence, KEYS[2] ch:{clinic}:chat:presence:nodes,
--   KEYS[3] ch:{clinic}:chat:presence:conns:<member>
--   ARGV[1] the member, ARGV[2] this node id, ARGV[3] stale after (ms), ARGV[4] "1" to forget this node's earlier
--   sockets, ARGV[5] channel
-- Returns 1 when the member went offline. A member gone meanwhile (presence-drop) is left as it is.
--- @include "now-ms"
local now = nowMs()
local staleBefore = now - tonumber(ARGV[3])
local member, self, forgetSelf = ARGV[1], ARGV[2], ARGV[4] == '1'
local current = redis.call('HGET', KEYS[1], member)
if not current then return 0 end
local function gone(node)
  if node == self then return forgetSelf end
  local seen = redis.call('HGET', KEYS[2], node)
  return seen == false or tonumber(seen) < staleBefore
end
local conns = redis.call('HGETALL', KEYS[3])
for i = 1, #conns, 2 do
  if gone(conns[i + 1]) then redis.call('HDEL', KEYS[3], conns[i]) end
end
if redis.call('HLEN', KEYS[3]) > 0 then return 0 end
redis.call('HDEL', KEYS[1], member)
local presence = cjson.encode({ member = member, role = cjson.decode(current).role, status = 'offline', since = now })
redis.call('SPUBLISH', ARGV[5], '{"t":"presence","presence":' .. presence .. '}')
return 1
