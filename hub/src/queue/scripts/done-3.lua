-- The consultation has ended. ARGV[5] ticket id, ARGV[6] JSON of each department's default
-- consultation minutes ({"dept": minutes}), ARGV[7] shortest measured consultation in seconds.
--- @include "lib"
local previous = replayed()
if previous then return previous end

local ticket = loadTicket(ARGV[5])
if not ticket then return fail('QUEUE_TICKET_NOT_FOUND') end
if ticket.status ~= 'called' and ticket.status ~= 'in_consultation' then return fail('QUEUE_INVALID_TRANSITION') end

local at = nowMs()
releaseRoom(ticket)
ticket.status = 'done'
ticket.endedAt = at
local defaultMinutes = cjson.decode(ARGV[6])[ticket.dept] or 10
return succeed(appendEvent('ticket.done', ticket, at, recordDuration(ticket, defaultMinutes, tonumber(ARGV[7]))))
