-- Writes one utterance's results and the participant's new stream position
-- at once, if this run still owns the session.
-- KEYS[1]  the session's ai-state hash
-- KEYS[2]  the consultation's ai stream
-- KEYS[3]  the consultation's session record stream
-- ARGV[1]  the run's owner token
-- ARGV[2]  the clinic's AI channel (SPUBLISH: the clinic's shard only)
-- ARGV[3]  the participant
-- ARGV[4]  their new stream position
-- ARGV[5]  their stress index ('' for none)
-- ARGV[6]  now (ms), the record entries' `at`
-- ARGV[7]  MAXLEN of the ai stream
-- ARGV[8]  the field results are stored under (AI_RESULT_FIELD)
-- ARGV     then per result: record type, utterance, AiResultMessage JSON
-- Returns 1, or 0 (nothing written) when another run has taken the session over.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
local field = ARGV[8]
local i = 9
while i < #ARGV do
  local kind, utterance, json = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', field, json)
  redis.call('XADD', KEYS[3], '*', 'type', kind, 'at', ARGV[6], 'participant', ARGV[3], 'utterance', utterance, field, json)
  redis.call('SPUBLISH', ARGV[2], json)
  i = i + 3
end
redis.call('HSET', KEYS[1], 'p:' .. ARGV[3], ARGV[4])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 's:' .. ARGV[3], ARGV[5]) end
return 1
