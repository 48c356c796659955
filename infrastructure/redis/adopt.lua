-- adopt.lua: move a shard's pending entries (delivered to earlier owners, unacknowledged) to
-- this consumer, only while it holds the shard's lease. Its holder runs this after raising
-- the shard's epoch in Postgres, so the earlier owners can no longer commit these entries:
-- taking them at once (min idle 0) takes nothing from a worker that could still apply them.
--
-- KEYS[1] the shard's lease   KEYS[2] the shard's stream (same slot)
-- ARGV[1] the lease value   ARGV[2] consumer group   ARGV[3] consumer
-- ARGV[4] start id ('0-0' first)   ARGV[5] count
--
-- Reply: nil when the lease is not this value's; else {next start id ('0-0' when every
-- pending entry was looked at), number of entries moved}.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local reply = redis.call('XAUTOCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, ARGV[4],
  'COUNT', ARGV[5], 'JUSTID')
return {reply[1], #reply[2]}
