-- The called patient is not here: the ticket goes back to waiting, behind the
-- tickets of its priority that are waiting now, and the room is free. ARGV[5] ticket id.
--- @include "lib"
local ticket, reply = ticketToChange('called')
if not ticket then return reply end

local at = nowMs()
releaseRoom(ticket)
ticket.status = 'waiting'
ticket.room = cjson.null
ticket.calledAt = cjson.null
ticket.order = orderBehindWaiting(ticket.dept, ticket.priority)
redis.call('ZADD', waitingKey(ticket.dept), ticket.order, ticket.id)
return succeed(appendEvent('ticket.skipped', ticket, at))
