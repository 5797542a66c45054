-- Marks an AI session done, if this run still owns it, and lets go of what it
-- no longer needs: the consultation's audio stream, read to its end, is
-- deleted (nothing reads it again: a job for a done session does nothing).
-- When the consultation has ended, what the session wrote after its end
-- (results, state) gets the expiry the end gave the rest of its data.
-- KEYS[1]  the session's ai-state hash
-- KEYS[2]  the consultation's audio stream
-- KEYS[3]  the consultation's meta hash
-- KEYS[4]  the consultation's ai stream
-- KEYS[5]  the consultation's session record stream
-- ARGV[1]  the run's owner token
-- ARGV[2]  the saves the run counts the state has had (session-write)
-- ARGV[3]  the stream position read up to
-- ARGV[4]  outcome (ended | stopped | idle)
-- ARGV[5]  now (ms)
-- Returns 1; or, nothing written, 0 when another run has taken the session
-- over, -1 when the state is not at the run's count (writes lost in a failover).
--- @include "session-write"
local refused = refuseWrite(KEYS[1], ARGV[1], ARGV[2])
if refused then return refused end
redis.call('HSET', KEYS[1], 'read', ARGV[3], 'done', '1', 'outcome', ARGV[4], 'finishedAt', ARGV[5])
redis.call('DEL', KEYS[2])
if redis.call('HGET', KEYS[3], 'status') == 'ended' then
  local keep = tonumber(redis.call('HGET', KEYS[3], 'retainConsultMs') or '')
  if keep and keep > 0 then
    -- No later than the meta hash itself: its remaining time when it has one.
    local left = redis.call('PTTL', KEYS[3])
    if left > 0 and left < keep then keep = left end
    for i = 1, 5 do
      if i ~= 2 and i ~= 3 then redis.call('PEXPIRE', KEYS[i], math.floor(keep)) end
    end
  end
end
return 1
