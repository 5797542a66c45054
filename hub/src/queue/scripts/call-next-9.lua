-- Calls the department's next waiting ticket to a room. ARGV[5] dept, ARGV[6] room,
-- ARGV[7] the department's default consultation minutes, ARGV[8] shortest measured
-- consultation in seconds. KEYS[9] the department's waiting set (ARGV[1] = ARGV[5]).
-- A ticket in consultation in that room is marked done first (one press of
-- "next patient"); a ticket only called, not yet started, makes the room busy.
-- Two staff pressing at once are serialised by Redis: never the same ticket.
--- @include "lib"
local previous = replayed()
if previous then return previous end

local dept, room = ARGV[5], ARGV[6]
local defaultMinutes, minSeconds = tonumber(ARGV[7]), tonumber(ARGV[8])
if redis.call('ZCARD', waitingKey(dept)) == 0 then return fail('QUEUE_EMPTY') end

local at = nowMs()
local busy = freeRoomForCall(room, at, defaultMinutes, minSeconds)
if busy then return busy end

local popped = redis.call('ZPOPMIN', waitingKey(dept))
return callToRoom(loadTicket(popped[1]), room, at)
