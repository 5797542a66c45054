-- Saves an AI session's progress, if this run still owns the session.
-- KEYS[1]  the session's ai-state hash
-- ARGV[1]  the run's owner token
-- ARGV[2]  n: how many (field, stream id) pairs follow that only move forward
-- ARGV     n pairs of field, stream id; then pairs of field, value set as given
-- Returns 1, or 0 (nothing written) when another run has taken the session over.
-- A position is set only when the new id is later than the stored one, so a
-- progress save that races with an utterance's commit cannot undo it.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end

local function later(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if not bms then return true end
  if not ams then return false end
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams > bms or (ams == bms and aseq > bseq)
end

local n = tonumber(ARGV[2])
local i = 3
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
