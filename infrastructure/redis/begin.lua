-- begin.lua: an idempotent request begins: read the key's record, or take the key for this
-- request (a short lease, renewed by renew.lua) if absent. IdempotencyStore.begin.
--
-- KEYS[1] idempotency key (string, in the student's slot)
-- ARGV[1] this request's token   ARGV[2] lease lifetime (ms)
--
-- Reply: the existing value, or nil after taking the key.

local existing = redis.call('GET', KEYS[1])
if existing then
  return existing
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
