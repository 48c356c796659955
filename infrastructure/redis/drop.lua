-- drop.lua: one student leaves one section, or its waitlist. A freed seat goes to the head
-- of the waitlist in the same step (promotion), so no newcomer ever sees it while someone
-- waits. Atomic with the persistence jobs (XADD) and the live event (PUBLISH).
--
-- KEYS[1] seats  KEYS[2] enrolled  KEYS[3] waitlist  KEYS[4] meta  KEYS[5] stream
-- KEYS[6] ready  (shapes as in register.lua)
-- ARGV[1] student id   ARGV[2] section id   ARGV[3] channel   ARGV[4] request id
--
-- Reply: {outcome, available seats, promoted student id ('' if none)}
--   outcome: DROPPED | LEFT_WAITLIST | NOT_REGISTERED | NOT_FOUND | UNAVAILABLE
-- Event (JSON): s, v, a, t, w as in register.lua; k kind (drop | leave), u student,
--   r the 1-based rank that left the waitlist (0 if none), h how many left from its head
--   (promoted), p the promoted student ids.

local student, section, channel, rid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if redis.call('EXISTS', KEYS[6]) == 0 then
  return {'UNAVAILABLE', 0, ''}
end
local total = redis.call('HGET', KEYS[4], 'total')
if not total then
  return {'NOT_FOUND', 0, ''}
end
local seats = tonumber(redis.call('GET', KEYS[1]) or '0')
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local event = {s = section, t = tonumber(total), u = student, r = 0, h = 0}
local promoted = ''
if redis.call('SREM', KEYS[2], student) == 1 then
  event.v = redis.call('HINCRBY', KEYS[4], 'version', 1)
  event.k = 'drop'
  redis.call('XADD', KEYS[5], '*', 'k', 'drop', 's', section, 'u', student,
    'v', event.v, 'at', now, 'rid', rid)
  local head = redis.call('ZRANGE', KEYS[3], 0, 0)
  if head[1] then
    promoted = head[1]
    redis.call('ZREM', KEYS[3], promoted)
    redis.call('SADD', KEYS[2], promoted)
    redis.call('XADD', KEYS[5], '*', 'k', 'promote', 's', section, 'u', promoted,
      'v', event.v, 'at', now, 'rid', rid)
    event.h, event.p = 1, {promoted}
  else
    seats = redis.call('INCR', KEYS[1])
  end
else
  local rank = redis.call('ZRANK', KEYS[3], student)
  if not rank then
    return {'NOT_REGISTERED', seats, ''}
  end
  redis.call('ZREM', KEYS[3], student)
  event.v = redis.call('HINCRBY', KEYS[4], 'version', 1)
  event.k, event.r = 'leave', rank + 1
  redis.call('XADD', KEYS[5], '*', 'k', 'leave', 's', section, 'u', student,
    'v', event.v, 'at', now, 'rid', rid)
end
event.a = seats
event.w = redis.call('ZCARD', KEYS[3])
redis.call('PUBLISH', channel, cjson.encode(event))
if event.k == 'leave' then
  return {'LEFT_WAITLIST', seats, ''}
end
return {'DROPPED', seats, promoted}
