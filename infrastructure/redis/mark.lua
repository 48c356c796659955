--!include lib/holding.lua
-- mark.lua: a drop begins. The section's holding becomes D (leaving: it still counts until
-- the seat is really given up), and so does every section that cannot be held without it (a
-- lecture whose last linked lab it was). The caller then drops those seats or places
-- (drop.lua) and only then forgets the holdings (move.lua D -> gone): a failure in between
-- leaves a D that the sweeper finishes, never a seat that counts nothing. docs/holdings.md.
--
-- KEYS[1] student (hash)   KEYS[2] holdings (hash) of the section's semester
-- ARGV[1] section id   ARGV[2] how long (ms) before the sweeper may finish the drop (dl)
-- ARGV[3] the operation dropping (drop.lua runs once per operation, so whoever finishes the
--   drop, the request or the sweeper, gives the seat up once)
--
-- Reply: {deadline, state found, the operation it is leaving under, dependant section
--   ids...}; the state found is E, W or P (marked D; a promotion under way then finds D and
--   lets it be), D (already leaving: this drop carries on with it, under the operation that
--   marked it, so its seat goes once and never a seat taken again after it), - (not held:
--   marked all the same), BUSY (a request's reservation of it in flight) or UNAVAILABLE (the
--   slot is not loaded). Dependants are returned (and marked) for E, W, P and D.

local id, op = ARGV[1], ARGV[3]
local deadline = clock_ms() + tonumber(ARGV[2])

if not loaded(KEYS[1]) then return {0, 'UNAVAILABLE'} end
local held = holdings(KEYS[2], '')
local mine = held[id]
if not mine then
  -- Not held: still marked, so a register of it cannot take a seat while this drop runs.
  local entry = {h = 'D', was = '-', c = '', cr = 0, m = {}, l = {}, dl = deadline, op = op}
  redis.call('HSET', KEYS[2], id, cjson.encode(entry))
  return {deadline, '-', op}
end
if mine.h == 'R' then return {0, 'BUSY'} end
local found, owner = mine.h, op
if found == 'D' then owner = mine.op end

local function mark(key, entry)
  if entry.h ~= 'D' then
    entry.was, entry.h, entry.dl, entry.op = entry.h, 'D', deadline, op
    redis.call('HSET', KEYS[2], key, cjson.encode(entry))
  end
end

mark(id, mine)
local reply = {deadline, found, owner}
local changed = true
while changed do
  changed = false
  for key, entry in pairs(held) do
    if #entry.l > 0 and (entry.h == 'E' or entry.h == 'W' or entry.h == 'P') then
      local keep = false
      for _, partner in ipairs(entry.l) do
        local other = held[partner]
        if other and other.h ~= 'D' then keep = true break end
      end
      if not keep then
        mark(key, entry)
        reply[#reply + 1] = key
        changed = true
      end
    end
  end
end
-- Dependants a previous run of this drop marked already (a retry carries on with them).
for key, entry in pairs(held) do
  if key ~= id and entry.h == 'D' and entry.op == op then
    local listed = false
    for j = 4, #reply do if reply[j] == key then listed = true end end
    if not listed then reply[#reply + 1] = key end
  end
end
return reply
