-- open_section.lua: create a section's live state, or refresh its static data (active
-- flag, registration window, rules) when it exists; seats and lines are never touched here.
--
-- KEYS[1] seats  KEYS[2] enrolled  KEYS[3] waitlist  KEYS[4] meta  (shapes as in register.lua)
-- ARGV[1] total   ARGV[2] active (1|0)   ARGV[3] opens (epoch ms)   ARGV[4] closes (epoch ms)
-- ARGV[5] version   ARGV[6..] static meta fields as pairs (field, value); an empty value
--         removes the field (rules: the JSON the student scripts check; wlcap; mode;
--         offer_ms)
--
-- Reply: 1 when created, 0 when refreshed.

local created = redis.call('EXISTS', KEYS[4]) == 0
if created then
  redis.call('HSET', KEYS[4], 'total', ARGV[1], 'version', ARGV[5], 'seq', 0)
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('HSET', KEYS[4], 'active', ARGV[2], 'opens', ARGV[3], 'closes', ARGV[4])
for i = 6, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[4], ARGV[i])
  else
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  end
end
return created and 1 or 0
