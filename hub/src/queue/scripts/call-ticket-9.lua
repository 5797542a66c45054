-- Calls one named waiting ticket to a room (a doctor admitting that patient rather
-- than the next in line). ARGV[5] ticket id, ARGV[6] dept, ARGV[7] room, ARGV[8] the
-- department's default consultation minutes, ARGV[9] shortest measured consultation
-- in seconds. KEYS[9] the department's waiting set (ARGV[1] = ARGV[6]). As with call-next, a ticket in consultation in that room is marked done
-- first, and a ticket only called there makes the room busy.
--- @include "lib"
local previous = replayed()
if previous then return previous end

local ticket = loadTicket(ARGV[5])
if not ticket or ticket.dept ~= ARGV[6] then return fail('QUEUE_TICKET_NOT_FOUND') end
if ticket.status ~= 'waiting' then return fail('QUEUE_INVALID_TRANSITION') end
local room = ARGV[7]
local defaultMinutes, minSeconds = tonumber(ARGV[8]), tonumber(ARGV[9])

local at = nowMs()
local busy = freeRoomForCall(room, at, defaultMinutes, minSeconds)
if busy then return busy end

redis.call('ZREM', waitingKey(ticket.dept), ticket.id)
return callToRoom(ticket, room, at)
