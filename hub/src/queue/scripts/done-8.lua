-- The consultation has ended. ARGV[5] ticket id, ARGV[6] JSON of each department's default
-- consultation minutes ({"dept": minutes}), ARGV[7] shortest measured consultation in seconds.
--- @include "lib"
local ticket, reply = ticketToChange('called', 'in_consultation')
if not ticket then return reply end

local at = nowMs()
releaseRoom(ticket)
ticket.status = 'done'
ticket.endedAt = at
local defaultMinutes = cjson.decode(ARGV[6])[ticket.dept] or 10
return succeed(appendEvent('ticket.done', ticket, at, recordDuration(ticket, defaultMinutes, tonumber(ARGV[7]))))
