-- Run by every hub node every few seconds, per clinic: records this node's heartbeat and
-- forgets the chat sockets of nodes that stopped without saying so (no heartbeat for
-- ARGV[3] ms), so their clinicians go offline. At start-up ARGV[4] = "1" also forgets the
-- sockets this node id had before (the node started again under the same id).
--   KEYS[1] ch:{clinic}:chat:presence, KEYS[2] ch:{clinic}:chat:presence:nodes
--   ARGV[1] ch:{clinic}:chat: (prefix), ARGV[2] this node id, ARGV[3] stale after (ms),
--   ARGV[4] "1" to forget this node's earlier sockets, ARGV[5] channel
--- @undeclared-keys chat builds thread, index and quota keys from its prefix (issue #16: not yet declared)
--- @include "now-ms"
local now = nowMs()
local staleBefore = now - tonumber(ARGV[3])
local self, forgetSelf = ARGV[2], ARGV[4] == '1'

local heartbeats = {}
local raw = redis.call('HGETALL', KEYS[2])
for i = 1, #raw, 2 do heartbeats[raw[i]] = tonumber(raw[i + 1]) end
local function gone(node)
  if node == self then return forgetSelf end
  local seen = heartbeats[node]
  return seen == nil or seen < staleBefore
end
for node in pairs(heartbeats) do
  if gone(node) then redis.call('HDEL', KEYS[2], node) end
end
redis.call('HSET', KEYS[2], self, now)

local offline = 0
for _, member in ipairs(redis.call('HKEYS', KEYS[1])) do
  local connsKey = ARGV[1] .. 'presence:conns:' .. member
  local conns = redis.call('HGETALL', connsKey)
  for i = 1, #conns, 2 do
    if gone(conns[i + 1]) then redis.call('HDEL', connsKey, conns[i]) end
  end
  if redis.call('HLEN', connsKey) == 0 then
    local current = redis.call('HGET', KEYS[1], member)
    redis.call('HDEL', KEYS[1], member)
    local presence = cjson.encode({ member = member, role = cjson.decode(current).role, status = 'offline', since = now })
    redis.call('SPUBLISH', ARGV[5], '{"t":"presence","presence":' .. presence .. '}')
    offline = offline + 1
  end
end
return offline
