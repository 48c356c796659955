--!include lib/holding.lua
-- confirm.lua: a student in line is being given a seat (promotion, or claiming an offer):
-- check the rules again against what they hold now. Passing reserves the holding (W -> P,
-- with a deadline and this operation) until move.lua makes it ENROLLED; failing changes
-- nothing: the caller takes the student off the line, then forgets the holding. The check
-- alone (no reservation) tells whether to offer a seat at all. docs/holdings.md.
--
-- KEYS[1] student (hash)   KEYS[2] holdings (hash) of the section's semester
-- ARGV[1] section id   ARGV[2] default credit limit   ARGV[3] section JSON (domain/wire.py SectionField)
-- ARGV[4] 1 to reserve on passing, 0 to only check   ARGV[5] reservation lifetime (ms)
-- ARGV[6] the operation promoting   ARGV[7] 1 to take over an R (a hand-over), 0 not (a
--   student's own claim: their register of the section is under way, so BUSY)
--
-- Reply: {verdict, deadline, the slot's generation (lib/holding.lua)}: OK | BUSY (a drop of it in flight: the drop settles the seat)
--   | UNAVAILABLE (the slot is not loaded) | HOLD | DUPLICATE_COURSE | TIME_CONFLICT |
--   CREDIT_LIMIT. An R (the student's own request, which joined the line a moment ago and
--   has not settled yet; hand-overs only) or a P (a promotion that died) is taken over as
--   it is: its credits and time are reserved already.

local id, s, reserve, op = ARGV[1], cjson.decode(ARGV[3]), ARGV[4] == '1', ARGV[6]
local deadline = clock_ms() + tonumber(ARGV[5])

local generation = loaded(KEYS[1])
if not generation then return {'UNAVAILABLE', 0, ''} end
local raw = redis.call('HGET', KEYS[2], id)
local entry = raw and cjson.decode(raw) or {h = 'W', c = s.c, cr = s.cr, m = s.m, l = s.l}
-- A holding keeps the section's rules current (staff's changes refresh it, refresh.lua),
-- while the caller's copy may be older: the holding's are checked and kept.
s.c, s.cr, s.m, s.l = entry.c, entry.cr, entry.m, entry.l
if entry.h == 'D' or (entry.h == 'R' and ARGV[7] ~= '1') then return {'BUSY', 0, generation} end
if entry.h == 'E' then return {'OK', 0, generation} end

if entry.h == 'W' then
  local facts = redis.call('HMGET', KEYS[1], 'holds', 'maxcr')
  if tonumber(facts[1] or '0') > 0 then return {'HOLD', 0, generation} end
  local held = holdings(KEYS[2], entry.sw or '')
  local reason = conflict(held, s, id, tonumber(facts[2] or ARGV[2]))
  if reason then return {reason, 0, generation} end
end
if not reserve then return {'OK', 0, generation} end
entry.h, entry.dl, entry.op = 'P', deadline, op
redis.call('HSET', KEYS[2], id, cjson.encode(entry))
return {'OK', deadline, generation}
