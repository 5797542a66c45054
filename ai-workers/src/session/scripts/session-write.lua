-- What every write of a session run checks first, and the count it takes.
-- The run's claim must still hold (the `owner` it wrote) and the session's
-- state must have had exactly the saves this run counts (`saves`: every
-- write of the owner adds one). Fewer: a failover of the shard lost writes
-- this run was told were made (replication is async): the run must claim
-- again from what the shard kept and redo what was lost, not write on past
-- it (its positions would step over finals that are gone). More: a write of
-- its own the run was not told of (its reply lost): claimed again as well.
-- Returns 0 (not the owner), -1 (not the saves counted), or nil: the write
-- goes on, counted.
local function refuseWrite(stateKey, owner, saves)
  local held = redis.call('HMGET', stateKey, 'owner', 'saves')
  if held[1] ~= owner then return 0 end
  if (held[2] or '0') ~= saves then return -1 end
  redis.call('HSET', stateKey, 'saves', tonumber(saves) + 1)
  return nil
end
