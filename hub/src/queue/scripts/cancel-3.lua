-- The patient left or the ticket was issued by mistake. ARGV[5] ticket id.
--- @include "lib"
local previous = replayed()
if previous then return previous end

local ticket = loadTicket(ARGV[5])
if not ticket then return fail('QUEUE_TICKET_NOT_FOUND') end
if ticket.status ~= 'waiting' and ticket.status ~= 'called' then return fail('QUEUE_INVALID_TRANSITION') end

local at = nowMs()
redis.call('ZREM', waitingKey(ticket.dept), ticket.id)
releaseRoom(ticket)
ticket.status = 'cancelled'
ticket.endedAt = at
return succeed(appendEvent('ticket.cancelled', ticket, at))
