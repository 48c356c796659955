-- pending.lua: what one shard's stream holds now, for a reader that keeps its own copy of
-- the stream's tail (pending.py): where the stream starts (the persister trims every entry
-- it acknowledges, streams.py ack, so what is left is what Postgres may not hold yet), and
-- the entries appended after the last one the reader has. One script, so the two agree.
--
-- KEYS[1] the shard's stream
-- ARGV[1] the last entry id the reader has ('0-0': none)   ARGV[2] at most this many entries
--
-- Reply: {first entry id ('' when the stream is empty), entries after ARGV[1], oldest first,
--   as XRANGE gives them: {id, {field, value, ...}}}

local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #first == 0 then
  return {'', {}}
end
-- Just past the reader's last id ("<ms>-<seq>"): an exclusive range needs Redis 6.2.
local last = ARGV[1]
local dash = string.find(last, '-', 1, true)
local start = string.sub(last, 1, dash) .. (tonumber(string.sub(last, dash + 1)) + 1)
return {first[1][1], redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', ARGV[2])}
