-- Writes one utterance's results and the participant's new stream position
-- at once, if this run still owns the session.
-- KEYS[1]  the session's ai-state hash
-- KEYS[2]  the consultation's ai stream
-- KEYS[3]  the consultation's session record stream
-- ARGV[1]  the run's owner token
-- ARGV[2]  the saves the run counts the state has had (session-write)
-- ARGV[3]  the clinic's AI channel (SPUBLISH: the clinic's shard only)
-- ARGV[4]  the participant
-- ARGV[5]  their new stream position
-- ARGV[6]  their stress index ('' for none)
-- ARGV[7]  now (ms), the record entries' `at`
-- ARGV[8]  MAXLEN of the ai stream
-- ARGV[9]  the field results are stored under (AI_RESULT_FIELD)
-- ARGV     then per result: record type, utterance, AiResultMessage JSON
-- Returns 1; or, nothing written nor published, 0 when another run has taken
-- the session over, -1 when the state is not at the run's count (writes lost
-- in a failover: the run claims again and redoes the finals lost, so none is
-- stored twice or out of order).
--- @include "session-write"
local refused = refuseWrite(KEYS[1], ARGV[1], ARGV[2])
if refused then return refused end
local field = ARGV[9]
local i = 10
while i < #ARGV do
  local kind, utterance, json = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', field, json)
  redis.call('XADD', KEYS[3], '*', 'type', kind, 'at', ARGV[7], 'participant', ARGV[4], 'utterance', utterance, field, json)
  redis.call('SPUBLISH', ARGV[3], json)
  i = i + 3
end
redis.call('HSET', KEYS[1], 'p:' .. ARGV[4], ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 's:' .. ARGV[4], ARGV[6]) end
return 1
