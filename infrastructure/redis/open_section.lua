-- open_section.lua: create a section's live state, or refresh its static data (active
-- flag, registration window) when it exists; seats and lines are never touched here.
--
-- KEYS[1] seats  KEYS[2] enrolled  KEYS[3] waitlist  KEYS[4] meta  (shapes as in register.lua)
-- ARGV[1] total   ARGV[2] active (1|0)   ARGV[3] opens (epoch ms)   ARGV[4] closes (epoch ms)
-- ARGV[5] version
--
-- Reply: 1 when created, 0 when refreshed.

if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HSET', KEYS[4], 'active', ARGV[2], 'opens', ARGV[3], 'closes', ARGV[4])
  return 0
end
redis.call('HSET', KEYS[4], 'total', ARGV[1], 'active', ARGV[2], 'opens', ARGV[3],
  'closes', ARGV[4], 'version', ARGV[5], 'seq', 0)
redis.call('SET', KEYS[1], ARGV[1])
return 1
