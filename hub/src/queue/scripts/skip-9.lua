-- The called patient is not here: the ticket goes back to waiting, behind the
-- tickets of its priority that are waiting now, and the room is free. ARGV[5] ticket id.
-- KEYS[9] the waiting set of the ticket's department, as the caller read it (ARGV[1]).
--- @include "lib"
local ticket, reply = ticketToChange('called')
if not ticket then return reply end
if ticket.dept ~= waitingDept then return fail('QUEUE_KEYS_STALE') end

local at = nowMs()
releaseRoom(ticket)
ticket.status = 'waiting'
ticket.room = cjson.null
ticket.calledAt = cjson.null
ticket.order = orderBehindWaiting(ticket.dept, ticket.priority)
redis.call('ZADD', waitingKey(ticket.dept), ticket.order, ticket.id)
return succeed(appendEvent('ticket.skipped', ticket, at))
