-- Takes an upload's bytes from the attachment quotas of the caller, the thread and the clinic (lib.lua,
-- takeQuota), or refuses with CHAT_QUOTA_EXCEEDED and takes nothing. The caller's access to the thread
-- was checked when the upload opened it. ARGV[7] limits as a JSON array [user, thread, clinic] (0: none),
-- ARGV[8] window in seconds, ARGV[9] bytes. KEYS[3..5] the bytes counters of the caller, the thread and the clinic.
--- @include "lib"
local refused = takeQuota('bytes', cjson.decode(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), { KEYS[3], KEYS[4], KEYS[5] })
if refused then return refused end
return '{"ok":true}'
