--!include lib/line.lua
-- capacity.lua: set a section's total seats. Seats it adds go to the line at once, in join
-- order (lib/line.lua pass_on); lowering below the seats taken (enrolled, or held for a
-- student in line) is refused.
--
-- KEYS: 1 seats, 2 enrolled, 3 waitlist, 4 meta, 5 stream, 6 ready, 7 held, 8 held index
-- ARGV[1] new total   ARGV[2] section id   ARGV[3] channel   ARGV[4] request id
-- ARGV[5] 1 when registration rules are checked
--
-- Reply: {status, seats taken, available seats, holder, ...}: status OK | BELOW_ENROLLED |
--   NOT_FOUND | UNAVAILABLE. Event (JSON) as in drop.lua, k = capacity.

local total, section, channel, rid = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]

if redis.call('EXISTS', KEYS[6]) == 0 then return {'UNAVAILABLE', 0, 0} end
if not redis.call('HGET', KEYS[4], 'total') then return {'NOT_FOUND', 0, 0} end
local taken = redis.call('SCARD', KEYS[2]) + redis.call('HLEN', KEYS[7])
if total < taken then
  return {'BELOW_ENROLLED', taken, tonumber(redis.call('GET', KEYS[1]) or '0')}
end
local now = clock_ms()
local version = redis.call('HINCRBY', KEYS[4], 'version', 1)
redis.call('HSET', KEYS[4], 'total', total)
redis.call('XADD', KEYS[5], '*', 'k', 'capacity', 's', section, 'n', total,
  'v', version, 'at', now, 'rid', rid)
local event = {s = section, v = version, k = 'capacity', r = 0, p = {}, o = {}, q = {}}
redis.call('SET', KEYS[1], 0)
local holders = pass_on_seats(total - taken, section, version, now, rid, ARGV[5] == '1', event)
publish(channel, event)
return {'OK', redis.call('SCARD', KEYS[2]) + redis.call('HLEN', KEYS[7]), event.a,
  unpack(holders)}
