-- Shared by every chat thread script, each of which includes it (--- @include "lib").
--
-- Every script takes the same first keys and arguments:
--   KEYS[1] ch:{clinic}:chat:t:<thread>          thread hash: kind, title, ticket, createdAt, createdBy,
--                                                seq (of the latest message), lastAt
--   KEYS[2] ch:{clinic}:chat:t:<thread>:members  set of member subs (consult and staff threads)
--   ARGV[1] ch:{clinic}:chat:   key prefix (chatKeys); not read: every other key a script touches
--                               (the thread's :messages, :reads, :cm:…, attachments, indexes) is one
--                               of its KEYS, named by the hub, so that a Cluster routes the script by
--                               them while the clinic's slot moves (README, "Moving slots"); all carry
--                               the {clinic} hash tag: a clinic's chat lives in one Cluster slot
--   ARGV[2] thread id           patient.<ticket>, consult.<id> or staff.<id>
--   ARGV[3] caller's token sub, ARGV[4] caller's role, ARGV[5] caller's ticket claim or ""
--   ARGV[6] channel             ch:{clinic}:chat: every change is published there for the hub nodes (SPUBLISH: the clinic's shard only)
local metaKey = KEYS[1]
local membersKey = KEYS[2]
local threadId = ARGV[2]
local caller = ARGV[3]
local callerRole = ARGV[4]
local callerTicket = ARGV[5]
local channel = ARGV[6]

local CHAT_ROLES = { admin = true, staff = true, doctor = true, patient = true }
local CLINICIAN = { admin = true, staff = true, doctor = true }

--- @include "now-ms"

local function fail(code, detail)
  return cjson.encode({ ok = false, code = code, detail = detail })
end

local function kindOf(id)
  return string.match(id, '^(%a+)%.')
end

local function hgetall(key)
  local fields = redis.call('HGETALL', key)
  if #fields == 0 then return nil end
  local t = {}
  for i = 1, #fields, 2 do t[fields[i]] = fields[i + 1] end
  return t
end

-- Items that are JSON already, as a JSON array (cjson would encode an empty table as {}).
local function jsonArray(items)
  return '[' .. table.concat(items, ',') .. ']'
end

-- The membership rule (docs/protocol.md, "Chat"); nil when the caller may read and
-- write the thread, else the error code. Decided before the thread is looked at, so a
-- non-member cannot tell a thread that exists from one that does not.
local function accessError(id, sub, role, ticket)
  if not CHAT_ROLES[role] then return 'AUTH_FORBIDDEN' end
  local kind = kindOf(id)
  if kind == 'patient' then
    if CLINICIAN[role] then return nil end
    if role == 'patient' and ticket ~= '' and id == 'patient.' .. ticket then return nil end
    return 'CHAT_NOT_MEMBER'
  end
  if kind == 'staff' and not CLINICIAN[role] then return 'CHAT_NOT_MEMBER' end
  if redis.call('SISMEMBER', membersKey, sub) == 1 then return nil end
  return 'CHAT_NOT_MEMBER'
end

-- The thread as clients see it (ChatThread), ready for cjson.
local function threadView(id, meta)
  local memberCount = cjson.null
  if meta.kind ~= 'patient' then memberCount = redis.call('SCARD', membersKey) end
  local ticket = cjson.null
  if meta.ticket and meta.ticket ~= '' then ticket = meta.ticket end
  local lastAt = cjson.null
  if meta.lastAt then lastAt = tonumber(meta.lastAt) end
  return {
    id = id, kind = meta.kind, title = meta.title, ticket = ticket,
    createdAt = tonumber(meta.createdAt), createdBy = meta.createdBy,
    lastSeq = tonumber(meta.seq or '0'), lastAt = lastAt, memberCount = memberCount,
  }
end

-- Adds `subs` to the thread's members, and the thread to each new member's own thread list: KEYS[offset + i]
-- for subs[i] (chatKeys.userThreads, declared by the hub). Returns the JSON of the subs that were not members yet.
local function addMembers(subs, offset)
  local added = {}
  for i, sub in ipairs(subs) do
    if redis.call('SADD', membersKey, sub) == 1 then
      redis.call('SADD', KEYS[offset + i], threadId)
      added[#added + 1] = cjson.encode(sub)
    end
  end
  return added
end

-- The thread's fields when the caller may use it; otherwise nil and the error code.
local function openThread()
  local denied = accessError(threadId, caller, callerRole, callerTicket)
  if denied then return nil, denied end
  local meta = hgetall(metaKey)
  if not meta then return nil, 'CHAT_THREAD_NOT_FOUND' end
  return meta
end

-- Whether the thread still holds the message a reader names by seq (its messages stream `messagesKey`, the
-- thread's latest seq `last`): not past the latest, and when the reader gave the `at` it holds (`at`, "" if not),
-- the stored message's is the same. A failover may lose messages after readers had them and give their seqs to
-- others (docs/protocol.md, "The chat resume rule"). Seq 0 (an empty thread) is always held.
local function holdsMessage(messagesKey, seq, last, at)
  if seq < 1 then return true end
  if seq > last then return false end
  if at == nil or at == '' then return true end
  local entry = redis.call('XRANGE', messagesKey, seq .. '-0', seq .. '-0')[1]
  return entry ~= nil and cjson.decode(entry[2][2]).at == tonumber(at)
end

-- Fixed-window quotas (docs/protocol.md, "Quotas"): `what` ('msg' or 'bytes') counted per caller, per thread
-- and per clinic in windows of `windowSeconds`; `limits` is { user, thread, clinic }, 0 for none; `keys` the three
-- counters (KEYS, chatKeys.quota: "<window>:<count>" strings). Takes `amount` from all of them, or from none: then
-- returns the error reply naming the scope over its limit.
local function takeQuota(what, limits, windowSeconds, amount, keys)
  local now = tonumber(redis.call('TIME')[1])
  local window = math.floor(now / windowSeconds)
  local scopes = { 'user', 'thread', 'clinic' }
  local taken = {}
  for i, scope in ipairs(scopes) do
    local limit = tonumber(limits[i]) or 0
    if limit > 0 then
      local used = 0
      local stored = redis.call('GET', keys[i])
      if stored then
        local storedWindow, count = string.match(stored, '^(%d+):(%d+)$')
        if tonumber(storedWindow) == window then used = tonumber(count) end
      end
      if used + amount > limit then
        local unit = 'messages'
        if what == 'bytes' then unit = 'attachment bytes' end
        return fail('CHAT_QUOTA_EXCEEDED', scope .. ' quota of ' .. limit .. ' ' .. unit .. ' per ' .. windowSeconds ..
          ' s reached; retry in ' .. ((window + 1) * windowSeconds - now) .. ' s')
      end
      taken[#taken + 1] = { keys[i], used + amount }
    end
  end
  for _, counter in ipairs(taken) do
    redis.call('SET', counter[1], string.format('%d:%d', window, counter[2]), 'EX', windowSeconds + 60)
  end
  return nil
end
