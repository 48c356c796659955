--!include lib/once.lua
-- append.lua: append an entry to a shard's stream once per operation (the attempts log: a
-- pipeline re-sent after a lost reply must not log a refusal twice).
--
-- KEYS[1] stream   KEYS[2] memo (lib/once.lua; in the stream's slot)
-- ARGV[1] operation   ARGV[2] memo lifetime (ms)   ARGV[3..] the entry's field/value pairs (domain/wire.py StreamField)
--
-- Reply: 1 when appended, 0 when this operation appended it already.

if recall(KEYS[2], ARGV[1]) then return 0 end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
remember(KEYS[2], ARGV[1], ARGV[2], 1)
return 1
