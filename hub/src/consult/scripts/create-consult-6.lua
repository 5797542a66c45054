-- Creates a consultation for an admitted ticket, unless the ticket already has one
-- that has not ended (an admission retried with the same requestId): then that one.
-- KEYS[1] ticket index  KEYS[2] open set  KEYS[3] all (sorted set)  KEYS[4] meta  KEYS[5] record
-- KEYS[6] the meta hash of the consultation the ticket index named when the caller read it
-- ARGV[1] that consultation's id ("" when the index named none): when the index names another
--   by now, the reply is {"stale":true} and nothing is changed (the caller reads it again)
-- ARGV[2] id  ARGV[3] dept  ARGV[4] ticket  ARGV[5] ticket number
-- ARGV[6] room  ARGV[7] media node  ARGV[8] language  ARGV[9] admitted by (token sub)
-- ARGV[10] ms to keep ids in the sorted set  ARGV[11] seconds to keep the ticket index
-- ARGV[12] ai ("1": an AI session follows it)  ARGV[13..15] the clinic's retention in ms:
--   live audio, consultation data, recordings (RETENTION_META_FIELDS)
-- ARGV[16] rec ("0": the clinic does not allow recording; the media-server refuses it)
--- @include "now-ms"
local existing = redis.call('GET', KEYS[1])
if (existing or '') ~= ARGV[1] then return cjson.encode({ stale = true }) end
if existing then
  local status = redis.call('HGET', KEYS[6], 'status')
  if status and status ~= 'ended' then return cjson.encode({ created = false, id = existing }) end
end

local id, at = ARGV[2], nowMs()
redis.call('HSET', KEYS[4],
  'status', 'waiting', 'node', ARGV[7], 'dept', ARGV[3], 'ticket', ARGV[4], 'number', ARGV[5],
  'room', ARGV[6], 'language', ARGV[8], 'createdAt', at, 'createdBy', ARGV[9],
  'ai', ARGV[12], 'retainAudioMs', ARGV[13], 'retainConsultMs', ARGV[14], 'retainRecordingMs', ARGV[15],
  'rec', ARGV[16])
redis.call('XADD', KEYS[5], '*', 'type', 'created', 'at', at, 'by', ARGV[9], 'dept', ARGV[3], 'node', ARGV[7])
redis.call('XADD', KEYS[5], '*', 'type', 'admitted', 'at', at, 'by', ARGV[9], 'ticket', ARGV[4])
redis.call('SET', KEYS[1], id, 'EX', tonumber(ARGV[11]))
redis.call('SADD', KEYS[2], id)
redis.call('ZADD', KEYS[3], at, id)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', at - tonumber(ARGV[10]))
return cjson.encode({ created = true, id = id })
