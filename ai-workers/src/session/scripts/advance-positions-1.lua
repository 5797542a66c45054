-- Moves an AI session's saved stream positions forward, never back.
-- KEYS[1]  the session's ai-state hash
-- ARGV     field, stream id, field, stream id, ...
-- A field is set only when the new id is later than the one stored, so a
-- progress save that races with an utterance's commit cannot undo it.
local function later(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  if not bms then return true end
  if not ams then return false end
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams > bms or (ams == bms and aseq > bseq)
end

local moved = 0
for i = 1, #ARGV, 2 do
  local current = redis.call('HGET', KEYS[1], ARGV[i])
  if not current or later(ARGV[i + 1], current) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    moved = moved + 1
  end
end
return moved
