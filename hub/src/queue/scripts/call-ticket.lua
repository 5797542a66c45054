-- Calls one named waiting ticket to a room (a doctor admitting that patient rather
-- than the next in line). ARGV[4] ticket id, ARGV[5] dept, ARGV[6] room, ARGV[7] the
-- department's default consultation minutes, ARGV[8] shortest measured consultation
-- in seconds. As with call-next, a ticket in consultation in that room is marked done
-- first, and a ticket only called there makes the room busy.
local previous = replayed()
if previous then return previous end

local ticket = loadTicket(ARGV[4])
if not ticket or ticket.dept ~= ARGV[5] then return fail('QUEUE_TICKET_NOT_FOUND') end
if ticket.status ~= 'waiting' then return fail('QUEUE_INVALID_TRANSITION') end
local room = ARGV[6]
local defaultMinutes, minSeconds = tonumber(ARGV[7]), tonumber(ARGV[8])

local at = nowMs()
local busy = freeRoomForCall(room, at, defaultMinutes, minSeconds)
if busy then return busy end

redis.call('ZREM', waitingKey(ticket.dept), ticket.id)
return callToRoom(ticket, room, at)
