-- Forgets a purged recording in one step: its metadata becomes a short-lived
-- tombstone (the facts recording.purged tells, read by a retry of the purge
-- that stopped after this step), its transcript and its place in the clinic's
-- index go, and `recording-purged` goes into the session record if that is
-- still kept. All at once, so a retry after a failover either finds the
-- metadata (nothing was done) or the tombstone (all of it was), never half.
-- The tombstone also says when (purgedAt), so the event says the same each time.
-- KEYS[1] the recording's metadata hash  KEYS[2] its transcript stream
-- KEYS[3] the clinic's recordings index  KEYS[4] the consultation's record stream
-- KEYS[5] the tombstone
-- ARGV[1] the recording's id  ARGV[2] the tombstone's lifetime (ms)  ARGV[3] now (ms)
-- ARGV     then the record entry's own fields, as field, value pairs
-- Returns 1, or 0 (nothing done) when there was no metadata.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[5])
redis.call('HSET', KEYS[5], 'purgedAt', ARGV[3], unpack(redis.call('HGETALL', KEYS[1])))
redis.call('DEL', KEYS[1])
redis.call('PEXPIRE', KEYS[5], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('XADD', KEYS[4], '*', 'type', 'recording-purged', 'at', ARGV[3], unpack(ARGV, 4))
end
return 1
