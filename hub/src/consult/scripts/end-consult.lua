-- Ends a consultation for good: status ended, out of the open set, an `ended` record
-- entry, and the control message media-server nodes act on. Ending it again does nothing.
-- KEYS[1] meta  KEYS[2] record  KEYS[3] open set
-- ARGV[1] id  ARGV[2] by (token sub, or "queue")  ARGV[3] reason  ARGV[4] control channel
-- ARGV[5] traceparent of the action that ends it, or ""
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return cjson.encode({ found = false, ended = false }) end
if status == 'ended' then return cjson.encode({ found = true, ended = false }) end

local at = nowMs()
redis.call('HSET', KEYS[1], 'status', 'ended', 'endedAt', at)
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('XADD', KEYS[2], '*', 'type', 'ended', 'at', at, 'by', ARGV[2], 'reason', ARGV[3])
local ticket = redis.call('HGET', KEYS[1], 'ticket') or ''
local message = { consult = ARGV[1], action = 'end', ticket = ticket, at = at }
if ARGV[5] ~= '' then message.traceparent = ARGV[5] end
redis.call('PUBLISH', ARGV[4], cjson.encode(message))
return cjson.encode({ found = true, ended = true })
