-- The thread, when the caller may read and write it (before joining its room, uploading
-- or downloading an attachment).
--- @include "lib"
local meta, denied = openThread()
if not meta then return fail(denied) end
return '{"ok":true,"thread":' .. cjson.encode(threadView(threadId, meta)) .. '}'
