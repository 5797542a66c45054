-- Replaces a recording's transcript, only while the recording is still kept:
-- one purged while it was being transcribed gets no transcript back. The
-- transcript expires when the recording is purged (its purgeAt), so it is
-- gone with it even if the purge job never ran.
-- KEYS[1] the recording's metadata hash  KEYS[2] its transcript stream
-- ARGV[1] the field each entry is stored under (AI_RESULT_FIELD)
-- ARGV     then one AiResultMessage JSON per entry, in order
-- Returns 1, or 0 (nothing written) when the recording is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  return 0
end
redis.call('DEL', KEYS[2])
for i = 2, #ARGV do
  redis.call('XADD', KEYS[2], '*', ARGV[1], ARGV[i])
end
local purgeAt = tonumber(redis.call('HGET', KEYS[1], 'purgeAt') or '')
if purgeAt and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIREAT', KEYS[2], math.floor(purgeAt)) end
return 1
