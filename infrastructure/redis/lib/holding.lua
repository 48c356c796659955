-- lib/holding.lua: a student's holdings, shared by the student scripts (reserve, confirm,
-- move, mark, load_student). scripts.py puts this text in front of every script that names
-- it in an `--!include` line. The state machine is written down in docs/holdings.md.
--
-- The student's hash (KEYS[1] of the scripts that check rules) has ld once the slot's rule
-- state is loaded (load_student.lua, or a student created empty): a slot Redis lost
-- answers UNAVAILABLE instead of checking rules against nothing. Its value is the slot's
-- generation: a reload writes a new one, so a saga can tell a slot reloaded under it.
-- A holdings hash is per student and semester: section id -> JSON entry, its fields (h, c,
-- cr, m, l, dl, op, sw, was) named and explained in domain/wire.py HoldingField. The state h:
-- R reserved by a request (op) until dl | W waiting | P promotion in flight (checked again,
-- reserved until dl) | E enrolled | D leaving: its seat or place is being given up (was: the
-- state it left; sw/op/dl as it had). After dl the sweeper settles it, and the section steps
-- of its saga refuse (lib/once.lua).

local function clock_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function loaded(student)
  return redis.call('HGET', student, 'ld')
end

-- Credits and meeting time are counted for what is held or may become held: E, R, P, and a
-- D that was E or P until the seat is really given up.
local function counts(entry)
  local h = entry.h
  if h == 'D' then h = entry.was end
  return h == 'E' or h == 'R' or h == 'P'
end

local function holdings(key, except)
  local held = {}
  local raw = redis.call('HGETALL', key)
  for i = 1, #raw, 2 do
    if raw[i] ~= except then held[raw[i]] = cjson.decode(raw[i + 1]) end
  end
  return held
end

local function overlaps(a, b)
  for _, x in ipairs(a) do
    for _, y in ipairs(b) do
      if x[1] < y[2] and y[1] < x[2] then return true end
    end
  end
  return false
end

-- The schedule rules of section s against the other holdings: DUPLICATE_COURSE,
-- TIME_CONFLICT, CREDIT_LIMIT or nil.
local function conflict(held, s, skip, max_credits)
  local credits = 0
  for id, entry in pairs(held) do
    if id ~= skip and entry.c == s.c then return 'DUPLICATE_COURSE' end
  end
  for id, entry in pairs(held) do
    if id ~= skip and counts(entry) then
      if overlaps(entry.m, s.m) then return 'TIME_CONFLICT' end
      credits = credits + entry.cr
    end
  end
  if credits + s.cr > max_credits + 1e-9 then return 'CREDIT_LIMIT' end
  return nil
end
