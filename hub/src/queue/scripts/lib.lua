-- Shared by every queue script, each of which includes it (--- @include "lib").
--
-- Every key a script touches is one of its KEYS (platform lua-scripts.ts checks it), all with the
-- clinic's {clinic} hash tag, so they live in one Cluster slot and a cluster can route the script,
-- and follow the slot while it migrates, by them. Every script takes the same first keys:
--   KEYS[1] ch:{clinic}:seq         per-clinic sequence number
--   KEYS[2] ch:{clinic}:events      event stream, entry id "<seq>-0", field e = event JSON (t: ARGV[4])
--   KEYS[3] ch:{clinic}:tickets     hash ticket id -> ticket JSON (active tickets only)
--   KEYS[4] ch:{clinic}:req:<id>    the first result of the action's idempotency key (ARGV[2])
--   KEYS[5] ch:{clinic}:rooms       hash room -> id of the ticket called there (or in consultation)
--   KEYS[6] ch:{clinic}:durations   hash dept -> its last measured consultations, ms, newest first, comma-separated
--   KEYS[7] ch:{clinic}:ended       sorted set ticket id -> when it ended (ms), for 25 h: its patient's token
--   KEYS[8] ch:{clinic}:order:last  the last time-based waiting order given
--   KEYS[9] ch:{clinic}:waiting:<d> sorted set of department d's waiting tickets (score = order), for the
--                                   scripts that take it (department d = ARGV[1])
-- and the same first arguments:
--   ARGV[1] department of KEYS[9], or ""
--   ARGV[2] the action's idempotency key: a retried action returns the first result
--   ARGV[3] channel              every committed event is published here for the hub nodes (SPUBLISH: the clinic's shard only)
--   ARGV[4] traceparent or ""    the action's W3C trace context, kept beside the event in its
--                                stream entry (field t), never in the event: the event is what
--                                displays receive, and they get nothing more
local seqKey = KEYS[1]
local eventsKey = KEYS[2]
local ticketsKey = KEYS[3]
local requestKey = KEYS[4]
local roomsKey = KEYS[5]
local durationsKey = KEYS[6]
local endedKey = KEYS[7]
local lastOrderKey = KEYS[8]
local waitingDept = ARGV[1]
local requestId = ARGV[2]
local channel = ARGV[3]
local traceparent = ARGV[4]

-- Enough for months of a busy clinic; the queue can be rebuilt from what is kept.
local EVENTS_KEPT = 100000
local REQUEST_IDS_KEPT_SECONDS = 86400
local TERMINAL = { done = true, no_show = true, cancelled = true }
-- When a ticket ended, kept for its patient's token (the clinic's grace period, at most 24 h, is read from it).
local ENDED_KEPT_MS = 90000 * 1000

--- @include "now-ms"

-- The first result of this requestId, marked as replayed; nil when it is new.
local function replayed()
  if requestId == '' then return nil end
  local previous = redis.call('GET', requestKey)
  if not previous then return nil end
  return '{"replayed":true,' .. string.sub(previous, 2)
end

local function fail(code)
  return cjson.encode({ ok = false, code = code })
end

local function loadTicket(id)
  local raw = redis.call('HGET', ticketsKey, id)
  if not raw then return nil end
  return cjson.decode(raw)
end

-- The waiting set of the department (KEYS[9], which the caller named for ARGV[1]).
local function waitingKey(dept)
  if KEYS[9] == nil or dept ~= waitingDept then error('queue script: no waiting key for department ' .. tostring(dept)) end
  return KEYS[9]
end

local function roomTicket(room)
  return redis.call('HGET', roomsKey, room)
end

-- Waiting order (smaller first). Urgent tickets take the clinic's next sequence number, so
-- they come before everyone else. The others wait in time order: the Redis clock in ms, never
-- below the last such order + 1 (check-ins within one ms, a clock stepped back). Thirteen
-- digits: cjson keeps 14 significant ones. An appointment's arrival waits at its scheduled
-- time instead (checkin.lua), which is why orders are times. Tickets issued before orders were
-- times have 10^12 + seq, earlier than any of these: they keep their place.
local function nextOrder(priority)
  if priority == 'urgent' then return tonumber(redis.call('GET', seqKey) or '0') + 1 end
  local order = math.max(nowMs(), tonumber(redis.call('GET', lastOrderKey) or '0') + 1)
  redis.call('SET', lastOrderKey, string.format('%.0f', order))
  return order
end

-- The order of a ticket going back to the end of its department's line (skip): behind every
-- ticket of its priority waiting now, including appointments that arrived early and wait at
-- their later scheduled time.
local function orderBehindWaiting(dept, priority)
  local order = nextOrder(priority)
  if priority == 'urgent' then return order end
  local last = redis.call('ZRANGE', waitingKey(dept), -1, -1, 'WITHSCORES')
  if last[2] and tonumber(last[2]) >= order then order = tonumber(last[2]) + 1 end
  return order
end

local function releaseRoom(ticket)
  if ticket.room ~= cjson.null and roomTicket(ticket.room) == ticket.id then
    redis.call('HDEL', roomsKey, ticket.room)
  end
end

-- Stores the ticket's new state, appends the change with the next sequence
-- number and publishes it. Returns the event JSON.
local function appendEvent(eventType, ticket, at, deptStats)
  local seq = redis.call('INCR', seqKey)
  local event = { seq = seq, type = eventType, at = at, ticket = ticket }
  if deptStats then event.deptStats = deptStats end
  local json = cjson.encode(event)
  if TERMINAL[ticket.status] then
    redis.call('HDEL', ticketsKey, ticket.id)
    redis.call('ZADD', endedKey, at, ticket.id)
    redis.call('ZREMRANGEBYSCORE', endedKey, '-inf', '(' .. string.format('%.0f', at - ENDED_KEPT_MS))
  else
    redis.call('HSET', ticketsKey, ticket.id, cjson.encode(ticket))
  end
  if traceparent == '' then
    redis.call('XADD', eventsKey, 'MAXLEN', '~', EVENTS_KEPT, seq .. '-0', 'e', json)
  else
    redis.call('XADD', eventsKey, 'MAXLEN', '~', EVENTS_KEPT, seq .. '-0', 'e', json, 't', traceparent)
  end
  redis.call('SPUBLISH', channel, json)
  return json
end

-- The ack for the action; remembered under the requestId for retries.
local function succeed(eventJson)
  local result = '{"ok":true,"event":' .. eventJson .. '}'
  if requestId ~= '' then
    redis.call('SET', requestKey, result, 'EX', REQUEST_IDS_KEPT_SECONDS)
  end
  return result
end

local DURATIONS_KEPT = 20

local function durationsOf(dept)
  local values = {}
  for v in string.gmatch(redis.call('HGET', durationsKey, dept) or '', '[^,]+') do values[#values + 1] = v end
  return values
end

-- The department's rolling mean of measured consultation minutes.
local function deptStats(dept, defaultMinutes)
  local values = durationsOf(dept)
  if #values == 0 then return { dept = dept, avgConsultMinutes = defaultMinutes, samples = 0 } end
  local sum = 0
  for _, v in ipairs(values) do sum = sum + tonumber(v) end
  local minutes = sum / #values / 60000
  return { dept = dept, avgConsultMinutes = math.floor(minutes * 10 + 0.5) / 10, samples = #values }
end

-- Measures a finished consultation (from start, or from the call when nobody
-- pressed start). Durations under minSeconds are corrections, not consultations.
local function recordDuration(ticket, defaultMinutes, minSeconds)
  local from = ticket.startedAt
  if from == cjson.null then from = ticket.calledAt end
  if from ~= cjson.null then
    local ms = ticket.endedAt - from
    if ms >= minSeconds * 1000 then
      local values = durationsOf(ticket.dept)
      table.insert(values, 1, string.format('%.0f', math.min(ms, 4 * 3600 * 1000)))
      while #values > DURATIONS_KEPT do table.remove(values) end
      redis.call('HSET', durationsKey, ticket.dept, table.concat(values, ','))
    end
  end
  return deptStats(ticket.dept, defaultMinutes)
end

-- Readies a room for its next patient (one press of "next patient"): a ticket
-- in consultation there is marked done; a ticket only called, not yet
-- started, makes the room busy. Returns an error reply, or nil when free.
local function freeRoomForCall(room, at, defaultMinutes, minSeconds)
  local currentId = roomTicket(room)
  if not currentId then return nil end
  local current = loadTicket(currentId)
  if current and current.status == 'called' then return fail('QUEUE_ROOM_BUSY') end
  if current and current.status == 'in_consultation' then
    current.status = 'done'
    current.endedAt = at
    redis.call('HDEL', roomsKey, room)
    appendEvent('ticket.done', current, at, recordDuration(current, defaultMinutes, minSeconds))
  end
  return nil
end

-- Calls a ticket (already out of the waiting set) to a free room.
local function callToRoom(ticket, room, at)
  ticket.status = 'called'
  ticket.room = room
  ticket.calledAt = at
  redis.call('HSET', roomsKey, room, ticket.id)
  return succeed(appendEvent('ticket.called', ticket, at))
end

-- The ticket ARGV[5] names, when it is in one of the given states. Otherwise nil and the reply
-- to return at once: the first result of a retried requestId, or the error.
local function ticketToChange(...)
  local previous = replayed()
  if previous then return nil, previous end
  local ticket = loadTicket(ARGV[5])
  if not ticket then return nil, fail('QUEUE_TICKET_NOT_FOUND') end
  for _, status in ipairs({ ... }) do
    if ticket.status == status then return ticket end
  end
  return nil, fail('QUEUE_INVALID_TRANSITION')
end
