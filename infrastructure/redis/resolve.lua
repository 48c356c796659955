--!include lib/line.lua
--!include lib/once.lua
-- resolve.lua: settle a seat held for a student in line (lib/line.lua): they take it
-- (claim), or it goes on down the line because they would break a rule (skip), declined
-- it (decline) or let the offer lapse (expire). Atomic with the jobs and the event; once
-- per operation, and a claim never past the deadline of the promotion's reservation
-- (lib/once.lua).
--
-- KEYS: 1 seats, 2 enrolled, 3 waitlist, 4 meta, 5 stream, 6 ready, 7 held, 8 held index,
--       9 memo (only with an op)
-- ARGV[1] student id   ARGV[2] section id   ARGV[3] channel   ARGV[4] request id
-- ARGV[5] action: claim | skip | decline | expire   ARGV[6] the rule broken (skip)
-- ARGV[7] operation ('' none)   ARGV[8] memo lifetime (ms)   ARGV[9] deadline (0 none)
--
-- Reply: {status, holder, ...}: status ENROLLED | REMOVED | EXPIRED (the seat moved on, to
--   the holders listed) | OFFERED | WAITING (an offer or pending seat not yet due) |
--   NOT_WAITLISTED | UNAVAILABLE. Event (JSON) as in drop.lua, k = the action.

local student, section, channel, rid, action = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local op, ttl, deadline = ARGV[7] or '', ARGV[8], tonumber(ARGV[9] or '0')

local earlier = recall(KEYS[9], op)
if earlier then return earlier end
if redis.call('EXISTS', KEYS[6]) == 0 or past(deadline) then return {'UNAVAILABLE'} end
local held = redis.call('HGET', KEYS[7], student)
if not held then
  if redis.call('SISMEMBER', KEYS[2], student) == 1 then return {'ENROLLED'} end
  if redis.call('ZRANK', KEYS[3], student) then return {'WAITING'} end
  return {'NOT_WAITLISTED'}
end
local kind, expires = string.sub(held, 1, 1), tonumber(string.sub(held, 3))
local now = clock_ms()
if action == 'claim' and kind == 'o' and now >= expires then action = 'expire' end
if action == 'expire' and now < expires then
  return {kind == 'o' and 'OFFERED' or 'WAITING'}
end

local rank = redis.call('ZRANK', KEYS[3], student)
redis.call('HDEL', KEYS[7], student)
redis.call('ZREM', KEYS[8], section .. '|' .. student)
redis.call('ZREM', KEYS[3], student)
local event = {s = section, u = student, k = action, r = rank + 1, p = {}, o = {}, q = {}}
event.v = redis.call('HINCRBY', KEYS[4], 'version', 1)
if action == 'claim' then
  redis.call('SADD', KEYS[2], student)
  redis.call('XADD', KEYS[5], '*', 'k', 'promote', 's', section, 'u', student,
    'v', event.v, 'at', now, 'rid', rid)
  event.e = student
  publish(channel, event)
  return remember(KEYS[9], op, ttl, {'ENROLLED'})
end
local why = ARGV[6]
if action == 'expire' then why = 'OFFER_EXPIRED' elseif action == 'decline' then why = 'OFFER_DECLINED' end
event.why = why
redis.call('XADD', KEYS[5], '*', 'k', 'leave', 's', section, 'u', student, 'why', why,
  'v', event.v, 'at', now, 'rid', rid)
local holders = pass_on_seats(1, section, event.v, now, rid, true, event)
publish(channel, event)
local status = action == 'expire' and 'EXPIRED' or 'REMOVED'
return remember(KEYS[9], op, ttl, {status, unpack(holders)})
