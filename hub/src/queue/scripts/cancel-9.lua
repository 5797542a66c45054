-- The patient left or the ticket was issued by mistake. ARGV[5] ticket id.
-- KEYS[9] the waiting set of the ticket's department, as the caller read it (ARGV[1]).
--- @include "lib"
local ticket, reply = ticketToChange('waiting', 'called')
if not ticket then return reply end
if ticket.dept ~= waitingDept then return fail('QUEUE_KEYS_STALE') end

local at = nowMs()
redis.call('ZREM', waitingKey(ticket.dept), ticket.id)
releaseRoom(ticket)
ticket.status = 'cancelled'
ticket.endedAt = at
return succeed(appendEvent('ticket.cancelled', ticket, at))
