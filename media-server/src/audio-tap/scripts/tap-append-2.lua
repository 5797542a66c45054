-- Appends one consultation's tapped audio to its stream, unless the AI session
-- that reads it is done: once it has read the stream to its end and deleted it
-- (ai-workers finish-session), nothing reads it again, so audio that was still
-- on its way (queued while Redis was slow, or written as the consultation
-- ended) must not bring it back: patient audio kept that nobody will read.
-- KEYS[1]  the consultation's ai-state hash (done = 1 once its session is done; never unset)
-- KEYS[2]  the consultation's audio stream
-- ARGV[1]  ms the stream lives after this write
-- ARGV[2]  MAXLEN (approximate) of the stream
-- ARGV[3…] per entry: '1' when it may only go into a stream that is there (what
--          a track writes at its end) else '0', the number of field and value
--          strings that follow, then those strings
-- Returns how many entries were written, or -1 when the session is done (none).
if redis.call('HGET', KEYS[1], 'done') == '1' then return -1 end
local written = 0
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i + 1])
  local fields = {}
  for j = 1, n do fields[j] = ARGV[i + 1 + j] end
  local id
  if ARGV[i] == '1' then
    id = redis.call('XADD', KEYS[2], 'NOMKSTREAM', 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
  else
    id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
  end
  if id then written = written + 1 end
  i = i + 2 + n
end
if written > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
return written
