-- acquire.lua: take a shard's worker lease if no one holds it, with a new epoch.
--
-- KEYS[1] the shard's lease   KEYS[2] the shard's epoch counter (same slot)
-- ARGV[1] the worker (consumer) id   ARGV[2] lifetime (ms)
-- ARGV[3] an epoch the new one must exceed: the shard's epoch in Postgres as the worker
--         last saw it (a counter lost with Redis's data starts again below it)
--
-- Reply: {epoch, lease value "<consumer>#<epoch>"} when taken, nil when the lease is held.
-- Renew and release (renew.lua, release.lua) compare the lease value.

if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local epoch = redis.call('INCR', KEYS[2])
local above = tonumber(ARGV[3])
if epoch <= above then
  epoch = above + 1
  redis.call('SET', KEYS[2], epoch)
end
local value = ARGV[1] .. '#' .. epoch
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {epoch, value}
