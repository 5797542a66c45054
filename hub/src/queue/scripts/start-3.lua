-- The called patient has come in: the consultation starts. ARGV[5] ticket id.
--- @include "lib"
local previous = replayed()
if previous then return previous end

local ticket = loadTicket(ARGV[5])
if not ticket then return fail('QUEUE_TICKET_NOT_FOUND') end
if ticket.status ~= 'called' then return fail('QUEUE_INVALID_TRANSITION') end

local at = nowMs()
ticket.status = 'in_consultation'
ticket.startedAt = at
return succeed(appendEvent('ticket.started', ticket, at))
