-- Creates a thread. ARGV[7] kind, ARGV[8] title, ARGV[9] members as a JSON array of subs
-- (consult and staff threads; the creator is always one), ARGV[10] seconds it is kept without
-- a message (its kind's retention; each message keeps it that long again: append-message).
-- KEYS[3] the clinic's patient-thread index; KEYS[4…] the thread list (chatKeys.userThreads)
-- of each member of ARGV[9], in its order, then the caller's.
-- Creating it again (a retry after a lost ack; a patient thread opened twice) returns it
-- with created = false; a consult or staff id taken by someone else is CHAT_THREAD_EXISTS.
--- @include "lib"
local kind, title = ARGV[7], ARGV[8]
local patientThreads = KEYS[3]
local members = cjson.decode(ARGV[9])
members[#members + 1] = caller
if #KEYS ~= 3 + #members then return fail('INTERNAL', 'create-thread takes a thread list key per member and the caller') end
if kind ~= kindOf(threadId) then return fail('INVALID_PAYLOAD', 'kind does not match the thread id') end
if kind == 'patient' then
  local denied = accessError(threadId, caller, callerRole, callerTicket)
  if denied then return fail(denied) end
elseif not CLINICIAN[callerRole] then
  return fail('AUTH_FORBIDDEN')
end

local existing = hgetall(metaKey)
if existing then
  if kind == 'patient' or existing.createdBy == caller then
    return '{"ok":true,"created":false,"thread":' .. cjson.encode(threadView(threadId, existing)) .. '}'
  end
  return fail('CHAT_THREAD_EXISTS')
end

local at = nowMs()
local ticket = ''
if kind == 'patient' then ticket = string.sub(threadId, string.len('patient.') + 1) end
redis.call('HSET', metaKey, 'kind', kind, 'title', title, 'ticket', ticket, 'createdAt', at, 'createdBy', caller, 'seq', 0)
local added = {}
if kind == 'patient' then
  redis.call('ZADD', patientThreads, at, threadId)
else
  added = addMembers(members, 3)
end
for _, key in ipairs({ metaKey, membersKey }) do redis.call('EXPIRE', key, tonumber(ARGV[10])) end
local view = cjson.encode(threadView(threadId, hgetall(metaKey)))
redis.call('SPUBLISH', channel, '{"t":"thread","thread":' .. view .. ',"added":' .. jsonArray(added) .. ',"removed":[]}')
return '{"ok":true,"created":true,"thread":' .. view .. '}'
