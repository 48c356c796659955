--!include lib/holding.lua
-- load_student.lua: write a student's rule state from the record (Postgres): what staff set
-- (holds, credit limit, time tickets, completed courses) and, in a rebuild, what they hold
-- per semester. Holdings in flight (R, P, D: a request, promotion or drop under way, with a
-- deadline the sweeper keeps) stay as they are; the settled ones (E, W) become the
-- record's. A rebuild sets ld: from then on the student scripts check rules here
-- (lib/holding.lua). One atomic step per student, so no check ever sees half of it.
--
-- KEYS[1] student (hash)   KEYS[2] completed (set)   KEYS[3..] holdings of each semester
--   given (hash, lib/holding.lua)
-- ARGV[1] the slot's new generation, marking it loaded (a rebuild), or '' to leave that as
--   it is (staff changed something)   ARGV[2] facts JSON {holds, maxcr, tk: {semester id: "opens,closes"}}
-- ARGV[3] completed course ids, JSON array
-- ARGV[4..] per semester of KEYS[3..]: JSON object section id -> entry (E or W)
--
-- Reply: the number of holdings written.

local facts = cjson.decode(ARGV[2])
-- (numbers as text: a float is not an argument Redis takes)
local fields = {'holds', tostring(facts.holds), 'maxcr', tostring(facts.maxcr)}
local stale = {}
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 3) == 'tk:' and not facts.tk[string.sub(field, 4)] then
    stale[#stale + 1] = field
  end
end
if #stale > 0 then redis.call('HDEL', KEYS[1], unpack(stale)) end
for semester, window in pairs(facts.tk) do
  fields[#fields + 1] = 'tk:' .. semester
  fields[#fields + 1] = window
end
if ARGV[1] ~= '' then
  fields[#fields + 1] = 'ld'
  fields[#fields + 1] = ARGV[1]
end
redis.call('HSET', KEYS[1], unpack(fields))

redis.call('DEL', KEYS[2])
local done = cjson.decode(ARGV[3])
if #done > 0 then redis.call('SADD', KEYS[2], unpack(done)) end

local written = 0
for k = 3, #KEYS do
  local record = cjson.decode(ARGV[k + 1])
  local live = holdings(KEYS[k], '')
  for id, entry in pairs(live) do
    if entry.h == 'E' or entry.h == 'W' then redis.call('HDEL', KEYS[k], id) end
  end
  for id, entry in pairs(record) do
    local now = live[id]
    if not (now and (now.h == 'R' or now.h == 'P' or now.h == 'D')) then
      -- the operation that settled it stays known (a retry of it knows its own work)
      if now and now.op and now.h == entry.h then entry.op = now.op end
      redis.call('HSET', KEYS[k], id, cjson.encode(entry))
      written = written + 1
    end
  end
end
return written
