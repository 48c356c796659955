--!include lib/line.lua
-- load_section.lua: replace a section's live state with the record from Postgres (a
-- rebuild: Redis lost its data, `rebuild-cache`, `reconcile --repair`). The record knows
-- enrolled students, offers and the line, not the seats held for a student pending a check
-- (p: they live for milliseconds and are never persisted), so a seat the record counts free
-- while students wait goes back to the line here (lib/line.lua pass_on), due at once for
-- the sweeper: a newcomer never takes a seat that the head of the line was waiting for.
--
-- KEYS: 1 seats, 2 enrolled, 3 waitlist, 4 meta, 5 stream, 6 ready, 7 held, 8 held index
--       (shapes as in register.lua and lib/line.lua; the stream and the marker are not reset)
-- ARGV[1] total  ARGV[2] active (1|0)  ARGV[3] opens  ARGV[4] closes  ARGV[5] version
-- ARGV[6] section id   ARGV[7] channel   ARGV[8] 1 when registration rules are checked
-- ARGV[9] k, the number of static meta pairs that follow (as in open_section.lua), then k
-- pairs; then n and n enrolled student ids; then m and m pairs (student id, held value
-- "o:<expires>") of offers; then the waitlist as pairs (join sequence, student id) in join
-- order.
--
-- Reply: available seats. Event (JSON, as in drop.lua, k = load) when seats went to the line.

local function at(i) return ARGV[i] end
local section, channel, checked = ARGV[6], ARGV[7], ARGV[8] == '1'
local i = 10
local statics = tonumber(at(9))
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[7])
redis.call('HSET', KEYS[4], 'total', ARGV[1], 'active', ARGV[2], 'opens', ARGV[3],
  'closes', ARGV[4], 'version', ARGV[5], 'seq', 0)
for _ = 1, statics do
  if at(i + 1) ~= '' then redis.call('HSET', KEYS[4], at(i), at(i + 1)) end
  i = i + 2
end
local n = tonumber(at(i))
i = i + 1
local chunk = 500
for j = i, i + n - 1, chunk do
  redis.call('SADD', KEYS[2], unpack(ARGV, j, math.min(j + chunk - 1, i + n - 1)))
end
i = i + n
local m = tonumber(at(i))
i = i + 1
for _ = 1, m do
  local student, value = at(i), at(i + 1)
  redis.call('HSET', KEYS[7], student, value)
  redis.call('ZADD', KEYS[8], tonumber(string.sub(value, 3)), section .. '|' .. student)
  i = i + 2
end
local seq = 0
for j = i, #ARGV, 2 * chunk do
  redis.call('ZADD', KEYS[3], unpack(ARGV, j, math.min(j + 2 * chunk - 1, #ARGV)))
end
if #ARGV >= i + 1 then seq = tonumber(ARGV[#ARGV - 1]) end
redis.call('HSET', KEYS[4], 'seq', seq)
local free = tonumber(ARGV[1]) - n - m
if free < 0 then free = 0 end
redis.call('SET', KEYS[1], 0)
if free > 0 and redis.call('ZCARD', KEYS[3]) > m then
  local now = clock_ms()
  local event = {s = section, k = 'load', r = 0, p = {}, o = {}, q = {}}
  event.v = redis.call('HINCRBY', KEYS[4], 'version', 1)
  pass_on_seats(free, section, event.v, now, 'rebuild', checked, event, now)
  publish(channel, event)
else
  redis.call('SET', KEYS[1], free)
end
return tonumber(redis.call('GET', KEYS[1]))
