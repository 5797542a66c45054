-- The Redis server's clock in ms: every writer of one key agrees on it, whichever machine runs the caller.
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
