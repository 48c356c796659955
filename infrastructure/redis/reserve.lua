-- reserve.lua: check one student's registration for sections of one semester against the
-- rules, and reserve credits and meeting time for each section that passes. The checks and
-- the reservations are one atomic step, so a student's concurrent requests cannot both
-- take the last credits or the same hour.
--
-- KEYS[1] student   (hash)  holds, maxcr, tk:<semester> = "opens,closes" (epoch ms)
-- KEYS[2] completed (set)   course ids
-- KEYS[3] holdings  (hash)  section id -> JSON entry of the semester (see below)
-- ARGV[1] semester id   ARGV[2] reservation lifetime (ms)   ARGV[3] default credit limit
-- ARGV[4] the section being swapped away ('' if none): it counts as already gone, and it
--         must be held ENROLLED (else every verdict is NOT_ENROLLED)
-- ARGV[5] every section id of the request, comma-separated (a linked partner may be one)
-- ARGV[6..] one JSON per section to check: id, c course, cr credits, m meeting intervals
--           [[start, end), ...] in minutes of the week, l linked section ids, p
--           prerequisite course ids, o / x the semester's registration window (epoch ms)
--
-- Entry: h holding (E enrolled, W waiting, R reserved), c, cr, m, l, dl reservation
--        deadline (R), sw the section this one is to replace (swap).
-- Reply: one verdict per section: OK (reserved) | HELD:E | HELD:W | HELD:R | a reason, in
--        the order checked: HOLD, NOT_YET_OPEN (before the student's time ticket),
--        REGISTRATION_CLOSED (after it, or outside the semester's window), PREREQUISITE_NOT_MET,
--        LINK_REQUIRED, DUPLICATE_COURSE, TIME_CONFLICT, CREDIT_LIMIT.

local semester, lifetime, swap_from = ARGV[1], tonumber(ARGV[2]), ARGV[4]
local in_request = {}
for id in string.gmatch(ARGV[5], '[^,]+') do in_request[id] = true end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local facts = redis.call('HMGET', KEYS[1], 'holds', 'maxcr', 'tk:' .. semester)
local holds = tonumber(facts[1] or '0')
local max_credits = tonumber(facts[2] or ARGV[3])
local ticket_opens, ticket_closes
if facts[3] then
  local a, b = string.match(facts[3], '^(%d+),(%d+)$')
  ticket_opens, ticket_closes = tonumber(a), tonumber(b)
end

if swap_from ~= '' then
  local old = redis.call('HGET', KEYS[3], swap_from)
  if not old or cjson.decode(old).h ~= 'E' then
    local refused = {}
    for i = 6, #ARGV do refused[#refused + 1] = 'NOT_ENROLLED' end
    return refused
  end
end

local held = {}
local raw = redis.call('HGETALL', KEYS[3])
for i = 1, #raw, 2 do
  if raw[i] ~= swap_from then held[raw[i]] = cjson.decode(raw[i + 1]) end
end

local function counts(entry)
  return entry.h == 'E' or entry.h == 'R'
end

local function overlaps(a, b)
  for _, x in ipairs(a) do
    for _, y in ipairs(b) do
      if x[1] < y[2] and y[1] < x[2] then return true end
    end
  end
  return false
end

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
  local credits = 0
  for _, entry in pairs(held) do
    if entry.c == s.c then return 'DUPLICATE_COURSE' end
  end
  for _, entry in pairs(held) do
    if counts(entry) then
      if overlaps(entry.m, s.m) then return 'TIME_CONFLICT' end
      credits = credits + entry.cr
    end
  end
  if credits + s.cr > max_credits + 1e-9 then return 'CREDIT_LIMIT' end
  return nil
end

local sections, verdicts, reserved = {}, {}, {}
for i = 6, #ARGV do sections[#sections + 1] = cjson.decode(ARGV[i]) end
for i, s in ipairs(sections) do
  local mine = held[s.id]
  if mine then
    verdicts[i] = 'HELD:' .. mine.h
  else
    local reason = check(s)
    if reason then
      verdicts[i] = reason
    else
      local entry = {h = 'R', c = s.c, cr = s.cr, m = s.m, l = s.l, dl = now + lifetime}
      if swap_from ~= '' then entry.sw = swap_from end
      held[s.id], reserved[s.id], verdicts[i] = entry, i, 'OK'
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
      held[id], reserved[id], verdicts[i], changed = nil, nil, 'LINK_REQUIRED', true
    end
  end
end
for id, _ in pairs(reserved) do
  redis.call('HSET', KEYS[3], id, cjson.encode(held[id]))
end
return verdicts
