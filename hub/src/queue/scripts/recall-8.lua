-- Calls a called ticket again. ARGV[5] ticket id, ARGV[6] recalls allowed before no-show.
-- The recall after the allowed ones makes the ticket a no-show and frees the room.
--- @include "lib"
local ticket, reply = ticketToChange('called')
if not ticket then return reply end

local at = nowMs()
if ticket.recalls >= tonumber(ARGV[6]) then
  releaseRoom(ticket)
  ticket.status = 'no_show'
  ticket.endedAt = at
  return succeed(appendEvent('ticket.no_show', ticket, at))
end
ticket.recalls = ticket.recalls + 1
ticket.calledAt = at
return succeed(appendEvent('ticket.recalled', ticket, at))
