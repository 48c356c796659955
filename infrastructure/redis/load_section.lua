-- load_section.lua: replace a section's live state with the record from Postgres
-- (cold start after Redis lost its data, or `reconcile --repair`).
--
-- KEYS[1] seats  KEYS[2] enrolled  KEYS[3] waitlist  KEYS[4] meta  (shapes as in register.lua)
-- ARGV[1] total  ARGV[2] active (1|0)  ARGV[3] opens  ARGV[4] closes  ARGV[5] version
-- ARGV[6] n, the number of enrolled student ids that follow
-- ARGV[7 .. 6+n] enrolled student ids, then pairs (join sequence, student id) of the waitlist
--
-- Reply: available seats.

local n = tonumber(ARGV[6])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
local chunk = 500
for i = 7, 6 + n, chunk do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + chunk - 1, 6 + n)))
end
local seq = 0
for i = 7 + n, #ARGV, 2 * chunk do
  redis.call('ZADD', KEYS[3], unpack(ARGV, i, math.min(i + 2 * chunk - 1, #ARGV)))
end
if #ARGV > 6 + n then
  seq = tonumber(ARGV[#ARGV - 1])
end
local seats = tonumber(ARGV[1]) - n
if seats < 0 then seats = 0 end
redis.call('HSET', KEYS[4], 'total', ARGV[1], 'active', ARGV[2], 'opens', ARGV[3],
  'closes', ARGV[4], 'version', ARGV[5], 'seq', seq)
redis.call('SET', KEYS[1], seats)
return seats
