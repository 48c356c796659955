-- claim.lua: read an idempotency record, or claim the key for this request if absent.
--
-- KEYS[1] idempotency key (string, in the student's slot)
-- ARGV[1] claim value   ARGV[2] claim lifetime (ms)
--
-- Reply: the existing value, or nil after claiming.

local existing = redis.call('GET', KEYS[1])
if existing then
  return existing
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
