-- Appends one message to the thread's stream (entry id "<seq>-0", field m = message JSON)
-- and publishes it. ARGV[7] clientMessageId, ARGV[8] text, ARGV[9] attachment ids as a
-- JSON array, ARGV[10] seconds a clientMessageId is remembered, ARGV[11] message quotas
-- per minute as a JSON array [user, thread, clinic] (0: none), ARGV[12] seconds a sent
-- attachment is kept (the clinic's retention.chatAttachmentDays), ARGV[13] seconds the thread
-- is kept after its last message (its kind's retention: patientChatDays, consultationDays,
-- staffChatDays). KEYS[3..5] the message counters of the caller, the thread and the clinic;
-- KEYS[6] the record of this clientMessageId from this sender (chatKeys.sentMessage), KEYS[7]
-- the thread's messages, KEYS[8] its read receipts, KEYS[9] the clinic's patient-thread index;
-- KEYS[10…] for each attachment id of ARGV[9], in its order, its hash and its bytes' key
-- (chatKeys.attachment, attachmentBlob).
--
-- The same clientMessageId from the same sender returns the stored message with
-- duplicate = true and appends nothing: a resend after a lost ack (or ioredis sending the
-- script again after a broken connection) makes one message, not two.
--- @include "lib"
local dedupeKey, messagesKey, readsKey, patientThreads = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local attachmentIds = cjson.decode(ARGV[9])
if #KEYS ~= 9 + 2 * #attachmentIds then return fail('INTERNAL', 'append-message takes two keys per attachment') end
local meta, denied = openThread()
if not meta then return fail(denied) end
local clientMessageId, text = ARGV[7], ARGV[8]

local stored = redis.call('GET', dedupeKey)
if stored then return '{"ok":true,"duplicate":true,"message":' .. stored .. '}' end

-- An attachment is sent by whoever uploaded it, into the thread it was uploaded to.
local attachments = {}
for i, id in ipairs(attachmentIds) do
  local attachment = hgetall(KEYS[8 + 2 * i])
  if not attachment or attachment.thread ~= threadId or attachment.uploader ~= caller then
    return fail('CHAT_ATTACHMENT_NOT_FOUND', id)
  end
  attachments[#attachments + 1] = cjson.encode({ id = id, type = attachment.type, size = tonumber(attachment.size), name = attachment.name })
end

-- After the dedupe: a resend of a message that was stored is answered, whatever the quota.
local refused = takeQuota('msg', cjson.decode(ARGV[11]), 60, 1, { KEYS[3], KEYS[4], KEYS[5] })
if refused then return refused end

local seq = redis.call('HINCRBY', metaKey, 'seq', 1)
local id = seq .. '-0'
local at = nowMs()
local fields = cjson.encode({
  id = id, seq = seq, threadId = threadId, sender = caller, senderRole = callerRole,
  text = text, clientMessageId = clientMessageId, at = at,
})
local json = string.sub(fields, 1, -2) .. ',"attachments":' .. jsonArray(attachments) .. '}'

redis.call('XADD', messagesKey, id, 'm', json)
redis.call('HSET', metaKey, 'lastAt', at)
redis.call('SET', dedupeKey, json, 'EX', tonumber(ARGV[10]))
local keepSeconds = tonumber(ARGV[12])
for i = 1, #attachmentIds do
  -- Sent: kept for the clinic's attachment retention from now (an upload never sent expires sooner). Its file
  -- (outside Redis) is deleted by the hub's sweep once this key has gone. Never PERSIST: patient data expires.
  local attachmentKey, blobKey = KEYS[8 + 2 * i], KEYS[9 + 2 * i]
  redis.call('HSET', attachmentKey, 'message', id)
  redis.call('EXPIRE', attachmentKey, keepSeconds)
  -- Bytes stored in Redis by hubs before attachment files (read until they expire).
  redis.call('EXPIRE', blobKey, keepSeconds)
end
-- Chat may hold patient data, whatever the kind: the thread goes its kind's retention after its last message
-- (members' thread lists drop it when they next list: list-threads), and the clinicians' list of patient
-- threads forgets threads that have gone.
local threadKeepSeconds = tonumber(ARGV[13])
for _, key in ipairs({ metaKey, messagesKey, readsKey, membersKey }) do redis.call('EXPIRE', key, threadKeepSeconds) end
if meta.kind == 'patient' then
  redis.call('ZADD', patientThreads, at, threadId)
  redis.call('ZREMRANGEBYSCORE', patientThreads, '-inf', '(' .. (at - threadKeepSeconds * 1000))
end
redis.call('SPUBLISH', channel, '{"t":"message","kind":"' .. meta.kind .. '","message":' .. json .. '}')
return '{"ok":true,"duplicate":false,"message":' .. json .. '}'
