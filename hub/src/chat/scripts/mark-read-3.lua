-- Moves the caller's read position forward to ARGV[7] (a seq; clamped to the latest
-- message) and publishes the receipt. A position never moves back. KEYS[3] the thread's read
-- positions (hash member -> ChatReceipt JSON).
--- @include "lib"
local meta, denied = openThread()
if not meta then return fail(denied) end
local seq = math.min(tonumber(ARGV[7]), tonumber(meta.seq or '0'))
local readsKey = KEYS[3]

local current = redis.call('HGET', readsKey, caller)
if current and cjson.decode(current).readSeq >= seq then
  return '{"ok":true,"changed":false,"receipt":' .. current .. '}'
end
local receipt = cjson.encode({ threadId = threadId, member = caller, role = callerRole, readSeq = seq, readId = seq .. '-0', at = nowMs() })
if seq < 1 then return '{"ok":true,"changed":false,"receipt":' .. receipt .. '}' end
redis.call('HSET', readsKey, caller, receipt)
-- Read positions go with the thread (a patient thread expires: the clinic's retention after its last message).
local threadTtl = redis.call('PTTL', metaKey)
if threadTtl > 0 then redis.call('PEXPIRE', readsKey, threadTtl) end
redis.call('SPUBLISH', channel, '{"t":"receipt","receipt":' .. receipt .. '}')
return '{"ok":true,"changed":true,"receipt":' .. receipt .. '}'
