-- Calls the department's next waiting ticket to a room. ARGV[4] dept, ARGV[5] room,
-- ARGV[6] the department's default consultation minutes, ARGV[7] shortest measured
-- consultation in seconds.
-- A ticket in consultation in that room is marked done first (one press of
-- "next patient"); a ticket only called, not yet started, makes the room busy.
-- Two staff pressing at once are serialised by Redis: never the same ticket.
local previous = replayed()
if previous then return previous end

local dept, room = ARGV[4], ARGV[5]
local defaultMinutes, minSeconds = tonumber(ARGV[6]), tonumber(ARGV[7])
if redis.call('ZCARD', waitingKey(dept)) == 0 then return fail('QUEUE_EMPTY') end

local at = nowMs()
local currentId = redis.call('GET', roomKey(room))
if currentId then
  local current = loadTicket(currentId)
  if current and current.status == 'called' then return fail('QUEUE_ROOM_BUSY') end
  if current and current.status == 'in_consultation' then
    current.status = 'done'
    current.endedAt = at
    redis.call('DEL', roomKey(room))
    appendEvent('ticket.done', current, at, recordDuration(current, defaultMinutes, minSeconds))
  end
end

local popped = redis.call('ZPOPMIN', waitingKey(dept))
local ticket = loadTicket(popped[1])
ticket.status = 'called'
ticket.room = room
ticket.calledAt = at
redis.call('SET', roomKey(room), ticket.id)
return succeed(appendEvent('ticket.called', ticket, at))
