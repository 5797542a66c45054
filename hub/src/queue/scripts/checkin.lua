-- Issues a ticket. ARGV[5] ticket id, ARGV[6] dept, ARGV[7] number prefix,
-- ARGV[8] priority, ARGV[9] clinic-local date (yyyymmdd), ARGV[10] patient JSON or "",
-- ARGV[11] seconds to keep the patient data.
local previous = replayed()
if previous then return previous end

local id, dept, letter, priority, date = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local patient, patientTtl = ARGV[10], tonumber(ARGV[11])

local counterKey = prefix .. 'counter:' .. dept .. ':' .. date
local n = redis.call('INCR', counterKey)
if n == 1 then redis.call('EXPIRE', counterKey, 172800) end

local at = nowMs()
local ticket = {
  id = id, number = string.format('%s-%03d', letter, n), dept = dept, priority = priority,
  status = 'waiting', room = cjson.null, order = nextOrder(priority), recalls = 0,
  issuedAt = at, calledAt = cjson.null, startedAt = cjson.null, endedAt = cjson.null,
}
redis.call('ZADD', waitingKey(dept), ticket.order, id)
if patient ~= '' then redis.call('SET', prefix .. 'patient:' .. id, patient, 'EX', patientTtl) end
return succeed(appendEvent('ticket.issued', ticket, at))
