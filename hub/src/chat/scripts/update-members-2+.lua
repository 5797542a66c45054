-- Adds and removes members of a consult or staff thread. ARGV[7] subs to add,
-- ARGV[8] subs to remove, both JSON arrays. Only members may change the list.
-- KEYS[3…] the thread list (chatKeys.userThreads) of each sub to add, in ARGV[7]'s
-- order, then of each sub to remove, in ARGV[8]'s.
--- @include "lib"
local adding, removing = cjson.decode(ARGV[7]), cjson.decode(ARGV[8])
if #KEYS ~= 2 + #adding + #removing then return fail('INTERNAL', 'update-members takes a thread list key per sub added or removed') end
local meta, denied = openThread()
if not meta then return fail(denied) end
if meta.kind == 'patient' then return fail('CHAT_MEMBERS_FIXED') end

local added, removed = addMembers(adding, 2), {}
for i, member in ipairs(removing) do
  if redis.call('SREM', membersKey, member) == 1 then
    redis.call('SREM', KEYS[2 + #adding + i], threadId)
    removed[#removed + 1] = cjson.encode(member)
  end
end
-- The members go with the thread (its kind's retention after its last message).
local threadTtl = redis.call('PTTL', metaKey)
if threadTtl > 0 then redis.call('PEXPIRE', membersKey, threadTtl) end
local view = cjson.encode(threadView(threadId, meta))
if #added + #removed > 0 then
  redis.call('SPUBLISH', channel, '{"t":"thread","thread":' .. view .. ',"added":' .. jsonArray(added) .. ',"removed":' .. jsonArray(removed) .. '}')
end
return '{"ok":true,"thread":' .. view .. '}'
