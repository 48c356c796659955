--!include lib/holding.lua
-- reserve.lua: check one student's registration for sections of one semester against the
-- rules, and reserve credits and meeting time for each section that passes (a holding R,
-- docs/holdings.md). The checks and the reservations are one atomic step, so a student's
-- concurrent requests cannot both take the last credits or the same hour.
--
-- KEYS[1] student   (hash)  ld = 1 once the slot's rule state is loaded (lib/holding.lua),
--                           holds, maxcr, tk:<semester> = "opens,closes" (epoch ms)
-- KEYS[2] completed (set)   course ids
-- KEYS[3] holdings  (hash)  section id -> JSON entry of the semester (lib/holding.lua)
-- ARGV[1] semester id   ARGV[2] reservation lifetime (ms)   ARGV[3] default credit limit
-- ARGV[4] the section being swapped away ('' if none): it counts as already gone, and it
--         must be held ENROLLED (else every verdict is NOT_ENROLLED, unless this operation
--         already settled the swap: its retry)
-- ARGV[5] every section id of the request, comma-separated (a linked partner may be one)
-- ARGV[6] the request's operation: a reservation of the same operation is its own (a retry)
-- ARGV[7..] one JSON per section to check: its compact rule JSON (id, c, cr, m, l, p, o, x:
--           domain/wire.py SectionField)
--
-- Reply: {deadline of the reservations (epoch ms), the slot's generation (lib/holding.lua),
--   verdict per section...}; a verdict is
--   OK (reserved) | AGAIN (reserved or settled by this operation already: a retry, whose
--   section step may have run: only this operation can have placed the student) | HELD:E | HELD:W |
--   HELD:P (held: the section scripts say what the student has; P is waiting, with a
--   promotion under way) | BUSY (another request's reservation, or a drop, of it in
--   flight) | UNAVAILABLE (the slot is not loaded) | a reason, in the order checked:
--   HOLD, NOT_YET_OPEN (before the student's time ticket), REGISTRATION_CLOSED (after it, or
--   outside the semester's window), PREREQUISITE_NOT_MET, LINK_REQUIRED, DUPLICATE_COURSE,
--   TIME_CONFLICT, CREDIT_LIMIT.

local semester, lifetime, swap_from, op = ARGV[1], tonumber(ARGV[2]), ARGV[4], ARGV[6]
local now = clock_ms()
local deadline = now + lifetime

local generation = loaded(KEYS[1])

local function all(word)
  local reply = {deadline, generation or ''}
  for _ = 7, #ARGV do reply[#reply + 1] = word end
  return reply
end

if not generation then return all('UNAVAILABLE') end

local in_request = {}
for id in string.gmatch(ARGV[5], '[^,]+') do in_request[id] = true end
local facts = redis.call('HMGET', KEYS[1], 'holds', 'maxcr', 'tk:' .. semester)
local holds = tonumber(facts[1] or '0')
local max_credits = tonumber(facts[2] or ARGV[3])
local ticket_opens, ticket_closes
if facts[3] then
  local a, b = string.match(facts[3], '^(%d+),(%d+)$')
  ticket_opens, ticket_closes = tonumber(a), tonumber(b)
end

local function own_work()
  for i = 7, #ARGV do
    local raw = redis.call('HGET', KEYS[3], cjson.decode(ARGV[i]).id)
    if raw and cjson.decode(raw).op == op then return true end
  end
  return false
end

if swap_from ~= '' then
  local raw = redis.call('HGET', KEYS[3], swap_from)
  local old = raw and cjson.decode(raw)
  -- A retry of a swap that got as far as settling finds `old` leaving or gone: it carries on.
  local leaving = old and old.h == 'D' and old.op == op
  if not (old and old.h == 'E') and not leaving and not own_work() then
    return all('NOT_ENROLLED')
  end
end

local held = holdings(KEYS[3], swap_from)

local function linked(section)
  for _, partner in ipairs(section.l) do
    if held[partner] or in_request[partner] then return true end
  end
  return false
end

local function check(s)
  if holds > 0 then return 'HOLD' end
  if ticket_opens then
    if now < ticket_opens then return 'NOT_YET_OPEN' end
    if now > ticket_closes then return 'REGISTRATION_CLOSED' end
  elseif now < s.o or now > s.x then
    return 'REGISTRATION_CLOSED'  -- the semester's window, as in the base contract
  end
  for _, course in ipairs(s.p) do
    if redis.call('SISMEMBER', KEYS[2], course) == 0 then return 'PREREQUISITE_NOT_MET' end
  end
  if #s.l > 0 and not linked(s) then return 'LINK_REQUIRED' end
  return conflict(held, s, '', max_credits)
end

local sections, verdicts, reserved = {}, {deadline, generation}, {}
for i = 7, #ARGV do sections[#sections + 1] = cjson.decode(ARGV[i]) end
for i, s in ipairs(sections) do
  local mine = held[s.id]
  if mine and mine.op == op and mine.h ~= 'P' and mine.h ~= 'D' then
    verdicts[i + 2] = 'AGAIN'  -- this operation's own work: a retry carries on with it
  elseif mine and (mine.h == 'E' or mine.h == 'W' or mine.h == 'P') then
    verdicts[i + 2] = 'HELD:' .. mine.h
  elseif mine then
    verdicts[i + 2] = 'BUSY'
  else
    local reason = check(s)
    if reason then
      verdicts[i + 2] = reason
    else
      local entry = {h = 'R', c = s.c, cr = s.cr, m = s.m, l = s.l, dl = deadline, op = op}
      if swap_from ~= '' then entry.sw = swap_from end
      held[s.id], reserved[s.id], verdicts[i + 2] = entry, i, 'OK'
    end
  end
end

-- A partner in the same request counts only if it passed: drop reservations left without.
local changed = true
while changed do
  changed = false
  for id, i in pairs(reserved) do
    local keep = #sections[i].l == 0
    for _, partner in ipairs(sections[i].l) do
      if held[partner] then keep = true break end
    end
    if not keep then
      held[id], reserved[id], verdicts[i + 2], changed = nil, nil, 'LINK_REQUIRED', true
    end
  end
end
for id, _ in pairs(reserved) do
  redis.call('HSET', KEYS[3], id, cjson.encode(held[id]))
end
return verdicts
