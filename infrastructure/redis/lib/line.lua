-- lib/line.lua: functions shared by the section scripts that free seats. scripts.py puts
-- this text in front of every script whose first line is `--!include lib/line.lua`.
-- KEYS layout of those scripts: 1 seats, 2 enrolled, 3 waitlist, 4 meta, 5 stream,
-- 6 ready, 7 held (hash student -> "p:<expires>" pending promotion | "o:<expires>" offer),
-- 8 held index (the shard's zset "<section>|<student>" scored by expiry, for the sweeper).

local function clock_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Give one freed seat to the line. Without rule checks, in AUTO_ENROLL mode, the head is
-- enrolled at once. Otherwise the seat is held for the first student in line not holding
-- one already: pending a rules check (p) or offered until it expires (o). Returns the
-- holder as "p:<id>" / "o:<id>" / "e:<id>" (enrolled at once), or nil: the seat is free.
-- `due`, if given, is when a pending check falls due instead of after grace_ms (a rebuild
-- makes them due at once: no request is there to run them).
local function pass_on(section, version, now, rid, checked, event, due)
  local mode = redis.call('HGET', KEYS[4], 'mode')
  if mode ~= 'offer' and not checked then
    local head = redis.call('ZPOPMIN', KEYS[3])
    if not head[1] then return nil end
    redis.call('SADD', KEYS[2], head[1])
    redis.call('XADD', KEYS[5], '*', 'k', 'promote', 's', section, 'u', head[1],
      'v', version, 'at', now, 'rid', rid)
    event.p[#event.p + 1] = head[1]
    return 'e:' .. head[1]
  end
  local line = redis.call('ZRANGE', KEYS[3], 0, redis.call('HLEN', KEYS[7]))
  for _, candidate in ipairs(line) do
    if redis.call('HEXISTS', KEYS[7], candidate) == 0 then
      local kind = mode == 'offer' and 'o' or 'p'
      local life = redis.call('HGET', KEYS[4], kind == 'o' and 'offer_ms' or 'grace_ms')
      local expires = now + tonumber(life or '30000')
      if kind == 'p' and due then expires = due end
      redis.call('HSET', KEYS[7], candidate, kind .. ':' .. expires)
      redis.call('ZADD', KEYS[8], expires, section .. '|' .. candidate)
      if kind == 'o' then
        redis.call('XADD', KEYS[5], '*', 'k', 'offer', 's', section, 'u', candidate,
          'x', expires, 'v', version, 'at', now, 'rid', rid)
        event.o[#event.o + 1] = candidate
        event.x = expires
      else
        event.q[#event.q + 1] = candidate
      end
      return kind .. ':' .. candidate
    end
  end
  return nil
end

-- Pass on `count` freed seats; the seats nobody in line takes become available.
local function pass_on_seats(count, section, version, now, rid, checked, event, due)
  local holders = {}
  for _ = 1, count do
    local holder = pass_on(section, version, now, rid, checked, event, due)
    if holder then
      holders[#holders + 1] = holder
    else
      redis.call('INCR', KEYS[1])
    end
  end
  return holders
end

-- The section's event (fields: domain/wire.py EventField), with its current counts.
local function publish(channel, event)
  event.h = #event.p
  event.a = tonumber(redis.call('GET', KEYS[1]) or '0')
  event.w = redis.call('ZCARD', KEYS[3])
  event.t = tonumber(redis.call('HGET', KEYS[4], 'total'))
  if #event.p == 0 then event.p = nil end
  if #event.o == 0 then event.o = nil end
  if #event.q == 0 then event.q = nil end
  redis.call('PUBLISH', channel, cjson.encode(event))
end
