-- capacity.lua: set a section's total seats. Raising it promotes waitlisted students at
-- once, in join order; lowering it below the enrolled count is refused.
--
-- KEYS[1] seats  KEYS[2] enrolled  KEYS[3] waitlist  KEYS[4] meta  KEYS[5] stream
-- KEYS[6] ready  (shapes as in register.lua)
-- ARGV[1] new total   ARGV[2] section id   ARGV[3] channel   ARGV[4] request id
--
-- Reply: {status, enrolled count, available seats, promoted count}
--   status: OK | BELOW_ENROLLED | NOT_FOUND | UNAVAILABLE
-- Event (JSON): s, v, a, t, w as in register.lua; k = capacity, h how many were promoted
--   from the head of the waitlist, p their ids, r = 0.

local total, section, channel, rid = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]

if redis.call('EXISTS', KEYS[6]) == 0 then
  return {'UNAVAILABLE', 0, 0, 0}
end
if not redis.call('HGET', KEYS[4], 'total') then
  return {'NOT_FOUND', 0, 0, 0}
end
local enrolled = redis.call('SCARD', KEYS[2])
if total < enrolled then
  return {'BELOW_ENROLLED', enrolled, tonumber(redis.call('GET', KEYS[1]) or '0'), 0}
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local version = redis.call('HINCRBY', KEYS[4], 'version', 1)
redis.call('HSET', KEYS[4], 'total', total)
redis.call('XADD', KEYS[5], '*', 'k', 'capacity', 's', section, 'n', total,
  'v', version, 'at', now, 'rid', rid)

local seats = total - enrolled
local promoted = {}
while seats > 0 do
  local head = redis.call('ZPOPMIN', KEYS[3])
  if not head[1] then break end
  redis.call('SADD', KEYS[2], head[1])
  redis.call('XADD', KEYS[5], '*', 'k', 'promote', 's', section, 'u', head[1],
    'v', version, 'at', now, 'rid', rid)
  promoted[#promoted + 1] = head[1]
  seats = seats - 1
end
redis.call('SET', KEYS[1], seats)

local event = {s = section, v = version, a = seats, t = total, k = 'capacity', r = 0,
  h = #promoted, w = redis.call('ZCARD', KEYS[3])}
if #promoted > 0 then event.p = promoted end
redis.call('PUBLISH', channel, cjson.encode(event))
return {'OK', enrolled + #promoted, seats, #promoted}
