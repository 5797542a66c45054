-- The called patient has come in: the consultation starts. ARGV[5] ticket id.
--- @include "lib"
local ticket, reply = ticketToChange('called')
if not ticket then return reply end

local at = nowMs()
ticket.status = 'in_consultation'
ticket.startedAt = at
return succeed(appendEvent('ticket.started', ticket, at))
