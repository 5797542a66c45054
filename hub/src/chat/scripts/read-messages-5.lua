-- Reads a page of the thread. ARGV[7] "latest", "after" or "before"; ARGV[8] the cursor seq
-- (after / before it, exclusive); ARGV[9] page size; ARGV[10] "1" to add every member's
-- read position; ARGV[11] with "after": the `at` of the message the cursor names as the
-- reader holds it, or "". Messages come oldest first. KEYS[3] the thread's messages stream,
-- KEYS[4] its read positions, KEYS[5] its rewind mark (chatKeys.rewound).
--
-- "after" a cursor the thread no longer holds answers the latest page with rewound = true:
-- at or past the rewind mark, past the latest message, or whose message has another `at`
-- (a failover lost the reader's message and gave its seq to another). The reader has shown
-- a message that is gone, and starts over.
--- @include "lib"
local meta, denied = openThread()
if not meta then return fail(denied) end
local mode, cursor, limit = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local last = tonumber(meta.seq or '0')
local messagesKey = KEYS[3]

local rewound = false
if mode == 'after' then
  local mark = redis.call('GET', KEYS[5])
  if (mark and cursor >= tonumber(mark)) or not holdsMessage(messagesKey, cursor, last, ARGV[11]) then
    rewound = true
    mode = 'latest'
  end
end

local entries = {}
local hasOlder, hasNewer = false, false
local function reverse(list)
  local out = {}
  for i = #list, 1, -1 do out[#out + 1] = list[i] end
  return out
end

if mode == 'latest' then
  entries = redis.call('XREVRANGE', messagesKey, '+', '-', 'COUNT', limit + 1)
  if #entries > limit then
    hasOlder = true
    table.remove(entries)
  end
  entries = reverse(entries)
elseif mode == 'after' then
  entries = redis.call('XRANGE', messagesKey, (cursor + 1) .. '-0', '+', 'COUNT', limit + 1)
  if #entries > limit then
    hasNewer = true
    table.remove(entries)
  end
  hasOlder = math.min(cursor, last) >= 1
else
  if cursor > 1 then
    entries = redis.call('XREVRANGE', messagesKey, (cursor - 1) .. '-0', '-', 'COUNT', limit + 1)
    if #entries > limit then
      hasOlder = true
      table.remove(entries)
    end
    entries = reverse(entries)
  end
  hasNewer = cursor <= last
end

local messages = {}
for i, entry in ipairs(entries) do messages[i] = entry[2][2] end
local receipts = '[]'
if ARGV[10] == '1' then receipts = jsonArray(redis.call('HVALS', KEYS[4])) end
return '{"ok":true,"thread":' .. cjson.encode(threadView(threadId, meta)) .. ',"messages":' .. jsonArray(messages)
  .. ',"hasOlder":' .. tostring(hasOlder) .. ',"hasNewer":' .. tostring(hasNewer) .. ',"receipts":' .. receipts
  .. ',"rewound":' .. tostring(rewound) .. '}'
