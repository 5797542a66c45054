-- Ends a consultation for good: status ended, out of the open set, an `ended` record
-- entry, and the control message media-server nodes act on. Ending it again does nothing.
-- From now on its data is kept for the clinic's retention (written into the meta hash at
-- admission): the meta hash, session record, AI results and AI state expire
-- retainConsultMs from now (the ticket's pointer to it no later); the live audio stream
-- is deleted at once when no AI session follows the consultation (`ai` "0"), else it expires
-- retainAudioMs after now (the AI session deletes it sooner, once it has read it all).
-- KEYS[1] meta  KEYS[2] record  KEYS[3] open set  KEYS[4] ai stream  KEYS[5] ai state
-- KEYS[6] audio stream  KEYS[7] the ticket index of the ticket the meta hash named when the caller read it
-- ARGV[1] id  ARGV[2] by (token sub, or "queue")  ARGV[3] reason  ARGV[4] control channel (SPUBLISH: the clinic's shard only)
-- ARGV[5] traceparent of the action that ends it, or ""  ARGV[6] that ticket ("" for none): when the
--   meta hash names another by now, the reply is {"stale":true} and nothing is changed
-- ARGV[7] consultation retention in ms when the meta hash names none  ARGV[8] live audio, likewise
--- @include "now-ms"
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return cjson.encode({ found = false, ended = false }) end
if status == 'ended' then return cjson.encode({ found = true, ended = false }) end
local ticket = redis.call('HGET', KEYS[1], 'ticket') or ''
if ticket ~= ARGV[6] then return cjson.encode({ stale = true }) end

local function period(field, fallback)
  local value = tonumber(redis.call('HGET', KEYS[1], field) or '')
  if value and value > 0 then return math.floor(value) end
  return tonumber(fallback)
end

local at = nowMs()
redis.call('HSET', KEYS[1], 'status', 'ended', 'endedAt', at)
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('XADD', KEYS[2], '*', 'type', 'ended', 'at', at, 'by', ARGV[2], 'reason', ARGV[3])
local message = { consult = ARGV[1], action = 'end', ticket = ticket, at = at }
if ARGV[5] ~= '' then message.traceparent = ARGV[5] end
redis.call('SPUBLISH', ARGV[4], cjson.encode(message))

local keep = period('retainConsultMs', ARGV[7])
for i = 1, 5 do
  if i ~= 3 then redis.call('PEXPIRE', KEYS[i], keep) end
end
if ticket ~= '' then redis.call('PEXPIRE', KEYS[7], keep, 'LT') end
-- Only an admission that said "no AI session" ("0") is sure nothing will read the audio.
if redis.call('HGET', KEYS[1], 'ai') == '0' then
  redis.call('DEL', KEYS[6])
else
  redis.call('PEXPIRE', KEYS[6], period('retainAudioMs', ARGV[8]))
end
return cjson.encode({ found = true, ended = true })
