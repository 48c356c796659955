-- read_shard.lua: read a shard's stream through its consumer group, only while holding the
-- shard's lease: a worker whose lease lapsed takes no entry the new owner should get.
--
-- KEYS[1] the shard's lease   KEYS[2] the shard's stream (same slot)
-- ARGV[1] the lease value   ARGV[2] consumer group   ARGV[3] consumer   ARGV[4] count
-- ARGV[5] '>' for new entries, '0' for the consumer's own unacknowledged ones
--
-- Reply: nil when the lease is not this value's. Else {entries, last id}: entries as
-- XREADGROUP gives them ({id, {field, value, ...}}; the fields nil for an entry deleted
-- since it was delivered); last id is the stream's last generated id when a '>' read found
-- nothing (a plain XREAD BLOCK from it wakes at the next entry), else ''. XREADGROUP runs
-- without BLOCK: a script cannot block.

if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[4],
  'STREAMS', KEYS[2], ARGV[5])
local entries = reply and reply[1][2] or {}
local last = ''
if #entries == 0 and ARGV[5] == '>' then
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      last = info[i + 1]
    end
  end
end
return {entries, last}
