-- Issues a ticket. ARGV[5] ticket id, ARGV[6] dept, ARGV[7] number prefix,
-- ARGV[8] priority, ARGV[9] clinic-local date (yyyymmdd), ARGV[10] patient JSON or "",
-- ARGV[11] seconds to keep the patient data.
-- The arrival of an appointment also gives ARGV[12] its id, ARGV[13] its scheduled time (ms),
-- ARGV[14] how late (ms) it may arrive and still wait at that time, ARGV[15] how early (ms)
-- it may arrive. Its record (KEYS[12], ch:{clinic}:appt:<id>, JSON written by the appointments
-- domain: startsAt, dept, ticket) must still say that time and department and have no ticket;
-- the ticket id goes into it in the same step, so one appointment gives one ticket.
-- KEYS[9] the department's waiting set (ARGV[1] = ARGV[6]), KEYS[10] its ticket counter of the
-- day (ch:{clinic}:counter:<dept>:<date>), KEYS[11] the new ticket's patient data
-- (ch:{clinic}:patient:<ticket id>), KEYS[12] the appointment's record (ch:{clinic}:appt: without one).
-- Fails with APPOINTMENT_NOT_FOUND, APPOINTMENT_ALREADY_ARRIVED or APPOINTMENT_TOO_EARLY.
--- @include "lib"
local previous = replayed()
if previous then return previous end

local id, dept, letter, priority, date = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local patient, patientTtl = ARGV[10], tonumber(ARGV[11])
local appointmentId = ARGV[12] or ''

local at = nowMs()
local order
local appointmentAt = nil
if appointmentId ~= '' then
  local startsAt, lateMs, earlyMs = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
  local apptKey = KEYS[12]
  local raw = redis.call('GET', apptKey)
  if not raw then return fail('APPOINTMENT_NOT_FOUND') end
  local appt = cjson.decode(raw)
  if appt.startsAt ~= startsAt or appt.dept ~= dept then return fail('APPOINTMENT_NOT_FOUND') end
  if appt.ticket ~= nil and appt.ticket ~= cjson.null then return fail('APPOINTMENT_ALREADY_ARRIVED') end
  if at < startsAt - earlyMs then return fail('APPOINTMENT_TOO_EARLY') end
  appt.ticket = id
  appt.arrivedAt = at
  redis.call('SET', apptKey, cjson.encode(appt), 'KEEPTTL')
  appointmentAt = startsAt
  -- On time (or early): waits at its scheduled time, ahead of walk-ins who came after it.
  -- Later than the clinic allows: a walk-in, in the order of its arrival.
  if at <= startsAt + lateMs then order = startsAt end
end
if not order then order = nextOrder(priority) end

local counterKey = KEYS[10]
local n = redis.call('INCR', counterKey)
if n == 1 then redis.call('EXPIRE', counterKey, 172800) end

local ticket = {
  id = id, number = string.format('%s-%03d', letter, n), dept = dept, priority = priority,
  status = 'waiting', room = cjson.null, order = order, recalls = 0,
  issuedAt = at, calledAt = cjson.null, startedAt = cjson.null, endedAt = cjson.null,
  appointmentAt = appointmentAt,
}
redis.call('ZADD', waitingKey(dept), ticket.order, id)
if patient ~= '' then redis.call('SET', KEYS[11], patient, 'EX', patientTtl) end
return succeed(appendEvent('ticket.issued', ticket, at))
