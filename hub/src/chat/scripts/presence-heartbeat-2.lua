-- Run by every hub node every few seconds, per clinic (chat-store.ts presenceSweep), first of two steps: records
-- this node's heartbeat, forgets the heartbeats of nodes that stopped without saying so (none for ARGV[2] ms), and
-- answers the members present, each of which presence-sweep-member then checks with its own keys.
--   KEYS[1] ch:{clinic}:chat:presence, KEYS[2] ch:{clinic}:chat:presence:nodes
--   ARGV[1] this node id, ARGV[2] stale after (ms)
--- @include "now-ms"
local now = nowMs()
local staleBefore = now - tonumber(ARGV[2])
local raw = redis.call('HGETALL', KEYS[2])
for i = 1, #raw, 2 do
  if raw[i] ~= ARGV[1] and tonumber(raw[i + 1]) < staleBefore then redis.call('HDEL', KEYS[2], raw[i]) end
end
redis.call('HSET', KEYS[2], ARGV[1], now)
return redis.call('HKEYS', KEYS[1])
