--!include lib/once.lua
-- register.lua: one student takes a seat in one section, or a place on its waitlist.
-- Atomic with the persistence job (XADD) and the live event (PUBLISH); once per operation
-- and never past the deadline of the reservation it acts under (lib/once.lua).
--
-- KEYS[1] seats     (string) available seats
-- KEYS[2] enrolled  (set)    student ids
-- KEYS[3] waitlist  (zset)   student ids scored by join sequence
-- KEYS[4] meta      (hash)   total, version, seq, active, opens, closes (epoch ms), and
--                            wlcap (waitlist capacity, absent = unlimited), mode (auto |
--                            offer), offer_ms, grace_ms (how long a seat is held, lib/line.lua)
-- KEYS[5] stream    (stream) the shard's persistence jobs
-- KEYS[6] ready     (string) the shard's state is loaded
-- KEYS[7] held      (hash)   students in line a seat is held for (lib/line.lua)
-- KEYS[8] held index (zset)  the shard's held seats by expiry (lib/line.lua)
-- KEYS[9] memo      (string) this operation's reply (lib/once.lua); only with an op
-- ARGV[1] student id   ARGV[2] section id   ARGV[3] channel   ARGV[4] request id
-- ARGV[5] operation ('' none)   ARGV[6] memo lifetime (ms)   ARGV[7] deadline (epoch ms of
--         Redis's clock, 0 none)   ARGV[8] the enrolled section a place on the waitlist is to
--         replace (a swap left waiting; '' none): the join job carries it (f), so Postgres
--         keeps the swap with the place it belongs to
-- ARGV[9] '1' when the student's slot already holds the section (reserve.lua's HELD): only
--         say what the student has; if the section has them neither enrolled nor in line,
--         the holding is on its way out (a skip, a claim refused), so UNAVAILABLE, taking
--         nothing the rules were not checked for
-- ARGV[10] the fingerprint of the rules the student's reservation was checked against
--         ('' none: rules off, or nothing checked): if the section's (meta rv) differs, staff
--         changed them since, and the seat step refuses (UNAVAILABLE: try again). So whoever
--         holds the section got it under its current rules or before they changed, and
--         the change's refresh of holdings finds them (domain/rules_admin.py)
--
-- Reply: {outcome, available seats, waitlist position (0 if none), reason ('' if none)},
--   and for a replayed reply a fifth: where the student stands now (ENROLLED | WAITLISTED |
--   REJECTED for neither)
--   outcome: ENROLLED | WAITLISTED | ALREADY_ENROLLED | ALREADY_WAITLISTED | REJECTED
--   reason:  SECTION_NOT_FOUND | SECTION_INACTIVE | REGISTRATION_CLOSED | WAITLIST_FULL |
--            UNAVAILABLE
-- Event on the channel (JSON): s, v, a, t, w, k (enroll | join), u of domain/wire.py
--   EventField. Stream entries (XADD): the fields of domain/wire.py StreamField.

local student, section, channel, rid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local op, ttl = ARGV[5] or '', ARGV[6]
local deadline, replaces = tonumber(ARGV[7] or '0'), ARGV[8] or ''
local known = ARGV[9] == '1'
local checked = ARGV[10] or ''

local earlier = recall(KEYS[9], op)
if earlier then
  -- The first answer, and where the student stands now (the caller settles to that).
  local now = 'REJECTED'
  if redis.call('SISMEMBER', KEYS[2], student) == 1 then
    now = 'ENROLLED'
  elseif redis.call('ZRANK', KEYS[3], student) then
    now = 'WAITLISTED'
  end
  earlier[5] = now
  return earlier
end
if redis.call('EXISTS', KEYS[6]) == 0 or past(deadline) then
  return {'REJECTED', 0, 0, 'UNAVAILABLE'}
end
local meta = redis.call('HMGET', KEYS[4], 'total', 'active', 'opens', 'closes', 'wlcap', 'rv')
if not meta[1] then
  return {'REJECTED', 0, 0, 'SECTION_NOT_FOUND'}
end
local seats = tonumber(redis.call('GET', KEYS[1]) or '0')
if checked ~= '' and meta[6] and meta[6] ~= checked then
  return {'REJECTED', seats, 0, 'UNAVAILABLE'}
end
if meta[2] ~= '1' then
  return {'REJECTED', seats, 0, 'SECTION_INACTIVE'}
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
if now < tonumber(meta[3]) or now > tonumber(meta[4]) then
  return {'REJECTED', seats, 0, 'REGISTRATION_CLOSED'}
end
if redis.call('SISMEMBER', KEYS[2], student) == 1 then
  return {'ALREADY_ENROLLED', seats, 0, ''}
end
local rank = redis.call('ZRANK', KEYS[3], student)
if rank then
  return {'ALREADY_WAITLISTED', seats, rank + 1, ''}
end
if known then return {'REJECTED', seats, 0, 'UNAVAILABLE'} end

if seats <= 0 and meta[5] and redis.call('ZCARD', KEYS[3]) >= tonumber(meta[5]) then
  return {'REJECTED', seats, 0, 'WAITLIST_FULL'}
end

local version = redis.call('HINCRBY', KEYS[4], 'version', 1)
local outcome, position, kind = 'ENROLLED', 0, 'enroll'
if seats > 0 then
  seats = redis.call('DECR', KEYS[1])
  redis.call('SADD', KEYS[2], student)
  redis.call('XADD', KEYS[5], '*', 'k', kind, 's', section, 'u', student,
    'v', version, 'at', now, 'rid', rid)
else
  outcome, kind = 'WAITLISTED', 'join'
  local seq = redis.call('HINCRBY', KEYS[4], 'seq', 1)
  redis.call('ZADD', KEYS[3], seq, student)
  position = redis.call('ZCARD', KEYS[3])
  if replaces ~= '' then
    redis.call('XADD', KEYS[5], '*', 'k', kind, 's', section, 'u', student,
      'v', version, 'q', seq, 'f', replaces, 'at', now, 'rid', rid)
  else
    redis.call('XADD', KEYS[5], '*', 'k', kind, 's', section, 'u', student,
      'v', version, 'q', seq, 'at', now, 'rid', rid)
  end
end
redis.call('PUBLISH', channel, cjson.encode({
  s = section, v = version, a = seats, t = tonumber(meta[1]),
  w = redis.call('ZCARD', KEYS[3]), k = kind, u = student}))
return remember(KEYS[9], op, ttl, {outcome, seats, position, ''})
