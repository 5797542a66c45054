-- Saves an AI session's progress, if this run still owns the session.
-- KEYS[1]  the session's ai-state hash
-- ARGV[1]  the run's owner token
-- ARGV[2]  the saves the run counts the state has had (session-write)
-- ARGV[3]  n: how many (field, stream id) pairs follow that only move forward
-- ARGV     n pairs of field, stream id; then pairs of field, value set as given
-- Returns 1; or, nothing written, 0 when another run has taken the session
-- over, -1 when the state is not at the run's count (writes lost in a failover).
-- A position is set only when the new id is later than the stored one, so a
-- progress save that races with an utterance's commit cannot undo it.
--- @include "session-write"
local refused = refuseWrite(KEYS[1], ARGV[1], ARGV[2])
if refused then return refused end

local function later(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if not bms then return true end
  if not ams then return false end
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams > bms or (ams == bms and aseq > bseq)
end

local n = tonumber(ARGV[3])
local i = 4
for _ = 1, n do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if not current or later(ARGV[i + 1], current) then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
  i = i + 2
end
while i < #ARGV do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
return 1
