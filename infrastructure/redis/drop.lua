--!include lib/line.lua
--!include lib/once.lua
-- drop.lua: one student leaves one section, or its waitlist. A freed seat goes to the line
-- in the same step (lib/line.lua pass_on): without rule checks the head is enrolled at
-- once; with them the seat is held for the head pending its check, or offered (OFFER
-- mode), so no newcomer ever sees it while someone waits. Atomic with the persistence
-- jobs (XADD) and the live event (PUBLISH); once per operation, never past its deadline
-- (lib/once.lua).
--
-- KEYS: 1 seats, 2 enrolled, 3 waitlist, 4 meta, 5 stream, 6 ready, 7 held, 8 held index
--       (shapes in register.lua and lib/line.lua), 9 memo (lib/once.lua; only with an op)
-- ARGV[1] student id   ARGV[2] section id   ARGV[3] channel   ARGV[4] request id
-- ARGV[5] 1 when registration rules are checked   ARGV[6] operation ('' none)
-- ARGV[7] memo lifetime (ms)   ARGV[8] deadline (epoch ms, 0 none: lib/once.lua)
-- ARGV[9] why the student is dropped when they did not ask for it ('' or absent: they
--   did): LINK_REQUIRED for a linked section dropped with its last partner (a notification)
--
-- Reply: {outcome, available seats, holder, ...}: outcome DROPPED | LEFT_WAITLIST |
--   NOT_REGISTERED | NOT_FOUND | UNAVAILABLE; holders as returned by pass_on.
-- Event (JSON) of every section script: the fields of domain/wire.py EventField (s, v, a,
--   t, w, k, u, r, h, p, e, o, x, q, why), k = drop | leave. Stream entries (XADD): the
--   fields of domain/wire.py StreamField.

local student, section, channel, rid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local checked = ARGV[5] == '1'
local op, ttl, deadline = ARGV[6] or '', ARGV[7], tonumber(ARGV[8] or '0')
local why = ARGV[9] or ''

local earlier = recall(KEYS[9], op)
if earlier then return earlier end
if redis.call('EXISTS', KEYS[6]) == 0 or past(deadline) then return {'UNAVAILABLE', 0} end
if not redis.call('HGET', KEYS[4], 'total') then return {'NOT_FOUND', 0} end
local now = clock_ms()
local event = {s = section, u = student, r = 0, p = {}, o = {}, q = {}}
local outcome, holders

if redis.call('SREM', KEYS[2], student) == 1 then
  outcome, event.k = 'DROPPED', 'drop'
  event.v = redis.call('HINCRBY', KEYS[4], 'version', 1)
  if why ~= '' then
    redis.call('XADD', KEYS[5], '*', 'k', 'drop', 's', section, 'u', student, 'why', why,
      'v', event.v, 'at', now, 'rid', rid)
  else
    redis.call('XADD', KEYS[5], '*', 'k', 'drop', 's', section, 'u', student,
      'v', event.v, 'at', now, 'rid', rid)
  end
  holders = pass_on_seats(1, section, event.v, now, rid, checked, event)
else
  local rank = redis.call('ZRANK', KEYS[3], student)
  if not rank then
    return {'NOT_REGISTERED', tonumber(redis.call('GET', KEYS[1]) or '0')}
  end
  outcome, event.k, event.r = 'LEFT_WAITLIST', 'leave', rank + 1
  redis.call('ZREM', KEYS[3], student)
  event.v = redis.call('HINCRBY', KEYS[4], 'version', 1)
  redis.call('XADD', KEYS[5], '*', 'k', 'leave', 's', section, 'u', student,
    'v', event.v, 'at', now, 'rid', rid)
  holders = {}
  if redis.call('HDEL', KEYS[7], student) == 1 then
    -- the seat held for them goes on down the line
    redis.call('ZREM', KEYS[8], section .. '|' .. student)
    holders = pass_on_seats(1, section, event.v, now, rid, checked, event)
  end
end
publish(channel, event)
return remember(KEYS[9], op, ttl, {outcome, event.a, unpack(holders)})
