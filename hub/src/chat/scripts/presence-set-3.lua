-- Registers one chat socket of a clinician and sets their presence.
--   KEYS[1] ch:{clinic}:chat:presence                 hash member -> StaffPresence JSON (members with a chat socket)
--   KEYS[2] ch:{clinic}:chat:presence:conns:<member>  hash socket id -> hub node id
--   KEYS[3] ch:{clinic}:chat:presence:nodes           hash hub node id -> its last heartbeat (ms, Redis clock)
--   ARGV[1] member, ARGV[2] role, ARGV[3] socket id, ARGV[4] node id,
--   ARGV[5] status, or "" to keep the member's current one ("online" for their first socket),
--   ARGV[6] channel
--- @include "now-ms"
local now = nowMs()
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[4], now)

local status = ARGV[5]
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  if status == '' or status == cjson.decode(current).status then return '{"ok":true,"presence":' .. current .. '}' end
elseif status == '' then
  status = 'online'
end
local presence = cjson.encode({ member = ARGV[1], role = ARGV[2], status = status, since = now })
redis.call('HSET', KEYS[1], ARGV[1], presence)
redis.call('SPUBLISH', ARGV[6], '{"t":"presence","presence":' .. presence .. '}')
return '{"ok":true,"presence":' .. presence .. '}'
