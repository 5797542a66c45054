-- The threads the caller may read, with the caller's read position. Here
-- KEYS[1] is ch:{clinic}:chat:threads:patient (patient threads by latest activity) and
-- KEYS[2] ch:{clinic}:chat:user:<caller> (the consult and staff threads they belong to);
-- ARGV[2] is unused; ARGV[7] how many patient threads, most recently active first. A consult
-- or staff thread that has gone (its retention after its last message) leaves the caller's set.
--- @undeclared-keys chat builds thread, index and quota keys from its prefix (issue #16: not yet declared)
--- @include "lib"
local ids, seen = {}, {}
local function add(id)
  if not seen[id] then
    seen[id] = true
    ids[#ids + 1] = id
  end
end
if CLINICIAN[callerRole] then
  for _, id in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[7]) - 1)) do add(id) end
elseif callerRole == 'patient' and callerTicket ~= '' then
  add('patient.' .. callerTicket)
end
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do add(id) end

local threads = {}
for _, id in ipairs(ids) do
  local meta = hgetall(threadKey(id))
  if not meta then
    redis.call('SREM', KEYS[2], id)
  elseif not accessError(id, caller, callerRole, callerTicket) then
    local view = threadView(id, meta)
    local read = redis.call('HGET', threadKey(id) .. ':reads', caller)
    view.readSeq = 0
    if read then view.readSeq = cjson.decode(read).readSeq end
    threads[#threads + 1] = cjson.encode(view)
  end
end
return '{"ok":true,"threads":' .. jsonArray(threads) .. '}'
