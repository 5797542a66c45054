-- The patient left or the ticket was issued by mistake. ARGV[5] ticket id.
--- @include "lib"
local ticket, reply = ticketToChange('waiting', 'called')
if not ticket then return reply end

local at = nowMs()
redis.call('ZREM', waitingKey(ticket.dept), ticket.id)
releaseRoom(ticket)
ticket.status = 'cancelled'
ticket.endedAt = at
return succeed(appendEvent('ticket.cancelled', ticket, at))
