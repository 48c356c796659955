-- answer.lua: store a request's answer under its idempotency key, only while the key holds
-- this request's token (begin.lua; or this very answer already: a call re-sent after a lost reply).
-- A request whose lease on the key lapsed (it ran past its renewals) never overwrites the answer
-- another request stored.
--
-- KEYS[1] the idempotency key (in the student's slot)
-- ARGV[1] this request's token   ARGV[2] the answer record   ARGV[3] lifetime (ms)
--
-- Reply: 1 when stored, 0 when the key holds something else.

local now = redis.call('GET', KEYS[1])
if now == ARGV[1] or now == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
