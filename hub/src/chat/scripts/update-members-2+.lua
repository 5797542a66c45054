-- Adds and removes members of a consult or staff thread. ARGV[7] subs to add,
-- ARGV[8] subs to remove, both JSON arrays. Only members may change the list.
--- @undeclared-keys chat builds thread, index and quota keys from its prefix (issue #16: not yet declared)
--- @include "lib"
local meta, denied = openThread()
if not meta then return fail(denied) end
if meta.kind == 'patient' then return fail('CHAT_MEMBERS_FIXED') end

local added, removed = {}, {}
for _, member in ipairs(cjson.decode(ARGV[7])) do
  if redis.call('SADD', membersKey, member) == 1 then
    redis.call('SADD', prefix .. 'user:' .. member, threadId)
    added[#added + 1] = cjson.encode(member)
  end
end
for _, member in ipairs(cjson.decode(ARGV[8])) do
  if redis.call('SREM', membersKey, member) == 1 then
    redis.call('SREM', prefix .. 'user:' .. member, threadId)
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
