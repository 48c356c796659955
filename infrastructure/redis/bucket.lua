-- bucket.lua: token buckets shared by every API process (the rate limits of register and
-- drop): `rate` tokens a second up to `burst`, on Redis's clock. A token is taken from every
-- bucket named, or from none. A bucket that would be full again is gone (it expires then):
-- a missing bucket is a full one.
--
-- KEYS[i] bucket i (a hash: t tokens, s and u the stamp's seconds and microseconds); a
--         student's is in the student's slot ({stu-<id>}), beside their other keys, so on a
--         cluster each bucket is a call of its own (redis/buckets.py)
-- ARGV[1] cost: 1 takes a token, -1 gives one back (a call another limit refused, on a
--         cluster)   ARGV[2i], ARGV[2i+1] bucket i's rate (tokens a second, > 0) and burst
-- ARGV[2n+2], ARGV[2n+3] optional: now as seconds and microseconds (tests); else Redis's TIME
--
-- Reply: one string per bucket (Lua numbers reach the client as integers): "0" when its
-- token can be had, else the seconds until it will be. When any is not "0", nothing was
-- taken and nothing written: the stored tokens and stamps give the same counts later.

local cost = tonumber(ARGV[1])
local n = #KEYS
local sec, usec
if ARGV[2 * n + 2] then
  sec, usec = ARGV[2 * n + 2], ARGV[2 * n + 3]
else
  local now = redis.call('TIME')
  sec, usec = now[1], now[2]
end

local tokens, waits, refused = {}, {}, false
for i = 1, n do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local have = burst
  local stored = redis.call('HMGET', KEYS[i], 't', 's', 'u')
  if stored[1] then
    -- seconds and microseconds apart: exact in a double, unlike microseconds since 1970
    local elapsed = (tonumber(sec) - tonumber(stored[2])) + (tonumber(usec) - tonumber(stored[3])) / 1e6
    if elapsed < 0 then elapsed = 0 end
    have = math.min(burst, tonumber(stored[1]) + elapsed * rate)
  end
  tokens[i] = have
  waits[i] = "0"
  if cost > 0 and have < cost then
    waits[i] = tostring((cost - have) / rate)
    refused = true
  end
end
if refused then
  return waits
end
for i = 1, n do
  local rate, burst = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local left = math.min(burst, tokens[i] - cost)
  redis.call('HSET', KEYS[i], 't', tostring(left), 's', sec, 'u', usec)
  redis.call('PEXPIRE', KEYS[i], math.ceil((burst - left) / rate * 1000) + 1000)
end
return waits
