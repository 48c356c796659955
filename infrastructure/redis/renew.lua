-- renew.lua: extend a lease only if this holder still has it.
--
-- KEYS[1] the lease key   ARGV[1] the holder's value   ARGV[2] lifetime (ms)
--
-- Reply: 1 when renewed, 0 when lost.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
