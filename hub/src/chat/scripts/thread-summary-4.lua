-- One thread of the caller's list (chat-store.ts listThreads, which reads the candidates first: the most
-- recently active patient threads for a clinician, the patient's own, the caller's consult and staff threads
-- in KEYS[4]). The thread as the caller sees it with their read position, or {"ok":true,"thread":null} when
-- they may not read it or it has gone; a consult or staff thread that has gone (its retention after its last
-- message) leaves the caller's set. KEYS[3] the thread's read positions, KEYS[4] ch:{clinic}:chat:user:<caller>.
--- @include "lib"
local meta = hgetall(metaKey)
if not meta then
  redis.call('SREM', KEYS[4], threadId)
  return '{"ok":true,"thread":null}'
end
if accessError(threadId, caller, callerRole, callerTicket) then return '{"ok":true,"thread":null}' end
local view = threadView(threadId, meta)
local read = redis.call('HGET', KEYS[3], caller)
view.readSeq = 0
if read then view.readSeq = cjson.decode(read).readSeq end
return '{"ok":true,"thread":' .. cjson.encode(view) .. '}'
