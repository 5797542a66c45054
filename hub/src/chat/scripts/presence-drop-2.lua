-- Forgets one chat socket; when it was the member's last one on any node, they go offline.
--   KEYS[1] ch:{clinic}:chat:presence, KEYS[2] ch:{clinic}:chat:presence:conns:<member>
--   ARGV[1] member, ARGV[2] socket id, ARGV[3] channel
--- @include "now-ms"
redis.call('HDEL', KEYS[2], ARGV[2])
if redis.call('HLEN', KEYS[2]) > 0 then return '{"ok":true,"offline":false}' end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return '{"ok":true,"offline":false}' end
local now = nowMs()
redis.call('HDEL', KEYS[1], ARGV[1])
local presence = cjson.encode({ member = ARGV[1], role = cjson.decode(current).role, status = 'offline', since = now })
redis.call('SPUBLISH', ARGV[3], '{"t":"presence","presence":' .. presence .. '}')
return '{"ok":true,"offline":true}'
