-- confirm.lua: a waiting student is being given a seat (promotion, or claiming an offer):
-- check the rules again against what they hold now. Passing reserves the holding (R, with
-- a deadline) until settle.lua makes it ENROLLED; failing forgets it, and the caller passes
-- the seat on. The check alone (no reservation) tells whether to offer a seat at all.
--
-- KEYS[1] student (hash)   KEYS[2] holdings (hash) of the section's semester
-- ARGV[1] section id   ARGV[2] default credit limit   ARGV[3] section JSON (see reserve.lua)
-- ARGV[4] 1 to reserve on passing and forget on failing, 0 to only check
-- ARGV[5] reservation lifetime (ms)
--
-- Reply: verdict: OK or HOLD | DUPLICATE_COURSE | TIME_CONFLICT | CREDIT_LIMIT.

local id, s = ARGV[1], cjson.decode(ARGV[3])
local raw = redis.call('HGET', KEYS[2], id)
local entry = raw and cjson.decode(raw) or {h = 'W', c = s.c, cr = s.cr, m = s.m, l = s.l}
if entry.h ~= 'W' then return 'OK' end
local swap_from = entry.sw or ''

local facts = redis.call('HMGET', KEYS[1], 'holds', 'maxcr')
local reason
if tonumber(facts[1] or '0') > 0 then reason = 'HOLD' end
local credits = 0
local rest = redis.call('HGETALL', KEYS[2])
for i = 1, #rest, 2 do
  local other = rest[i]
  if not reason and other ~= id and other ~= swap_from then
    local e = cjson.decode(rest[i + 1])
    if e.c == s.c then
      reason = 'DUPLICATE_COURSE'
    elseif e.h == 'E' or e.h == 'R' then
      for _, x in ipairs(e.m) do
        for _, y in ipairs(s.m) do
          if x[1] < y[2] and y[1] < x[2] then reason = 'TIME_CONFLICT' end
        end
      end
      credits = credits + e.cr
    end
  end
end
if not reason and credits + s.cr > tonumber(facts[2] or ARGV[2]) + 1e-9 then
  reason = 'CREDIT_LIMIT'
end
if reason then
  if ARGV[4] == '1' then redis.call('HDEL', KEYS[2], id) end
  return reason
end
if ARGV[4] == '1' then
  local clock = redis.call('TIME')
  entry.h = 'R'
  entry.dl = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) + tonumber(ARGV[5])
  entry.c, entry.cr, entry.m, entry.l = s.c, s.cr, s.m, s.l
  redis.call('HSET', KEYS[2], id, cjson.encode(entry))
end
return 'OK'
