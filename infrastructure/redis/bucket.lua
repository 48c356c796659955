-- bucket.lua: a token bucket shared by every API process (the rate limits of register and
-- drop): `rate` tokens a second up to `burst`, on Redis's clock. A bucket that would be full
-- again is gone (it expires then): a missing bucket is a full one.
--
-- KEYS[1] the bucket (a hash: t tokens, s and u the stamp's seconds and microseconds); a
--         student's bucket is in the student's slot ({stu-<id>}), beside their other keys
-- ARGV[1] rate (tokens a second, > 0)   ARGV[2] burst   ARGV[3] cost: 1 takes a token, -1
--         gives one back (a request the other limit refused)
-- ARGV[4], ARGV[5] optional: now as seconds and microseconds (tests); else Redis's TIME
--
-- Reply: "0" when taken (or given back); else the seconds until a token will be there, as a
-- string (Lua numbers reach the client as integers). A refusal writes nothing: the stored
-- tokens and stamp give the same count later.

local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local sec, usec
if ARGV[4] then
  sec, usec = ARGV[4], ARGV[5]
else
  local now = redis.call('TIME')
  sec, usec = now[1], now[2]
end

local tokens = burst
local stored = redis.call('HMGET', KEYS[1], 't', 's', 'u')
if stored[1] then
  -- seconds and microseconds apart: exact in a double, unlike microseconds since 1970
  local elapsed = (tonumber(sec) - tonumber(stored[2])) + (tonumber(usec) - tonumber(stored[3])) / 1e6
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(burst, tonumber(stored[1]) + elapsed * rate)
end
if cost > 0 and tokens < cost then
  return tostring((cost - tokens) / rate)
end
tokens = math.min(burst, tokens - cost)
redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', sec, 'u', usec)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return "0"
