-- Moves the caller's read position forward to ARGV[7] (a seq) and publishes the receipt. A
-- position never moves back. ARGV[8] the `at` of that message as the reader holds it, or "".
-- KEYS[3] the thread's read positions (hash member -> ChatReceipt JSON), KEYS[4] its messages.
--
-- A seq the thread no longer holds (past its latest message, or whose message has another
-- `at`: a failover lost what the reader read) records nothing and answers rewound = true: a
-- receipt never names a message its reader did not see.
--- @include "lib"
local meta, denied = openThread()
if not meta then return fail(denied) end
local seq = tonumber(ARGV[7])
local readsKey = KEYS[3]

local current = redis.call('HGET', readsKey, caller)
local function unchanged(rewound)
  local receipt = current or cjson.encode({ threadId = threadId, member = caller, role = callerRole, readSeq = 0, readId = '0-0', at = nowMs() })
  return '{"ok":true,"changed":false,"rewound":' .. tostring(rewound) .. ',"receipt":' .. receipt .. '}'
end
if not holdsMessage(KEYS[4], seq, tonumber(meta.seq or '0'), ARGV[8]) then return unchanged(true) end
if seq < 1 or (current and cjson.decode(current).readSeq >= seq) then return unchanged(false) end
local receipt = cjson.encode({ threadId = threadId, member = caller, role = callerRole, readSeq = seq, readId = seq .. '-0', at = nowMs() })
redis.call('HSET', readsKey, caller, receipt)
-- Read positions go with the thread (a patient thread expires: the clinic's retention after its last message).
local threadTtl = redis.call('PTTL', metaKey)
if threadTtl > 0 then redis.call('PEXPIRE', readsKey, threadTtl) end
redis.call('SPUBLISH', channel, '{"t":"receipt","receipt":' .. receipt .. '}')
return '{"ok":true,"changed":true,"rewound":false,"receipt":' .. receipt .. '}'
