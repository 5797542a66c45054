-- Makes a run the owner of an AI session and returns the session's state as
-- of that moment, in one step: a run that read the state first and claimed it
-- after could miss an utterance the run before it committed in between, and
-- commit that speech again (seen after a failover: two overlapping finals).
-- A finished session is not claimed (its state says `done`).
-- KEYS[1]  the session's ai-state hash
-- ARGV[1]  the run's owner token
-- Returns the state, as HGETALL does.
if not redis.call('HGET', KEYS[1], 'done') then redis.call('HSET', KEYS[1], 'owner', ARGV[1]) end
return redis.call('HGETALL', KEYS[1])
