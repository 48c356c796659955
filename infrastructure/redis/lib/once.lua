-- lib/once.lua: a saga step that runs once, and only in time. scripts.py puts this text in
-- front of every script that names it in an `--!include` line.
--
-- Each mutating call carries the operation it belongs to (op: one per request, the same for
-- a retry with the same idempotency key) and a memo key (the script's last KEYS entry) in
-- the section's slot. The first run stores its reply there for `ttl` ms; a second run of the
-- same op (redis-py's Retry re-sending a pipeline after a lost reply, a retried request, the
-- sweeper finishing a dead request's step) answers that reply and changes nothing.
-- A step of a saga also carries the deadline of the reservation it acts under: past it, the
-- sweeper may already have settled that reservation, so the step refuses (the caller answers
-- UNAVAILABLE and the client retries) instead of acting on a stale check.

local function recall(memo, op)
  if op == '' then return nil end
  local raw = redis.call('GET', memo)
  if raw then return cjson.decode(raw) end
  return nil
end

local function remember(memo, op, ttl, reply)
  if op ~= '' then redis.call('SET', memo, cjson.encode(reply), 'PX', ttl) end
  return reply
end

local function past(deadline)
  if deadline <= 0 then return false end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > deadline
end
