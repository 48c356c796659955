-- load_section.lua: replace a section's live state with the record from Postgres
-- (cold start after Redis lost its data, or `reconcile --repair`).
--
-- KEYS[1] seats  KEYS[2] enrolled  KEYS[3] waitlist  KEYS[4] meta  KEYS[5] held
-- KEYS[6] held index  (shapes as in register.lua and lib/line.lua)
-- ARGV[1] total  ARGV[2] active (1|0)  ARGV[3] opens  ARGV[4] closes  ARGV[5] version
-- ARGV[6] section id   ARGV[7] k, the number of static meta pairs that follow (as in
-- open_section.lua), then k pairs; then n and n enrolled student ids; then m and m pairs
-- (student id, held value "o:<expires>") of offers; then the waitlist as pairs (join
-- sequence, student id) in join order.
--
-- Reply: available seats.

local function at(i) return ARGV[i] end
local i = 8
local statics = tonumber(at(7))
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
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
  redis.call('HSET', KEYS[5], student, value)
  redis.call('ZADD', KEYS[6], tonumber(string.sub(value, 3)), ARGV[6] .. '|' .. student)
  i = i + 2
end
local seq = 0
for j = i, #ARGV, 2 * chunk do
  redis.call('ZADD', KEYS[3], unpack(ARGV, j, math.min(j + 2 * chunk - 1, #ARGV)))
end
if #ARGV >= i + 1 then seq = tonumber(ARGV[#ARGV - 1]) end
redis.call('HSET', KEYS[4], 'seq', seq)
local seats = tonumber(ARGV[1]) - n - m
if seats < 0 then seats = 0 end
redis.call('SET', KEYS[1], seats)
return seats
