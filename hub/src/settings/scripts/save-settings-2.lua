-- Saves a clinic's settings, audits the change and tells every hub node, in one step.
-- KEYS[1] the settings hash (config, version, updatedAt, updatedBy), KEYS[2] the clinic's audit stream.
-- ARGV[1] the settings JSON (validated by the caller), ARGV[2] the expected version ("" any, "0" none yet:
-- the seed of a new clinic), ARGV[3] who (token subject), ARGV[4] the channel every node listens on,
-- ARGV[5] the clinic id, ARGV[6] "audit" to append an entry, then ARGV[7..] its fields (role, action,
-- subject, from, before, after). Returns the new version, or -(current version) when the expected
-- version does not match (nothing is changed).
--- @include "now-ms"
local key, audit = KEYS[1], KEYS[2]
local json, expected, who, channel, clinic = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local current = tonumber(redis.call('HGET', key, 'version') or '0')
if expected ~= '' and tonumber(expected) ~= current then return -current end
local now = tostring(nowMs())
local version = current + 1
redis.call('HSET', key, 'config', json, 'version', version, 'updatedAt', now, 'updatedBy', who)
if ARGV[6] == 'audit' then
  redis.call('XADD', audit, 'MAXLEN', '~', 1000000, '*', 'actor', who, 'role', ARGV[7], 'action', ARGV[8], 'subject', ARGV[9],
    'from', ARGV[10], 'at', now, 'before', ARGV[11], 'after', ARGV[12])
end
redis.call('PUBLISH', channel, cjson.encode({ clinic = clinic, version = version }))
return version
