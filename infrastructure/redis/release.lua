-- release.lua: delete a key only if it still holds this holder's value (an idempotency
-- key's token, worker leases, the rebuild lock).
--
-- KEYS[1] the key   ARGV[1] the holder's value
--
-- Reply: 1 when deleted, 0 when the key is gone or held by someone else.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
