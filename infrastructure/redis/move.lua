--!include lib/holding.lua
-- move.lua: move holdings from the state their caller expects to the next (compare-and-set):
-- settle a reservation (R -> E | W | gone), a promotion (P -> E | W | gone), forget what was
-- given up (D -> gone, W -> gone). A move from a state the caller did not expect, or of
-- an entry in flight (R, P, D) for another operation, is refused and reported, so no
-- holding ever goes backwards and no saga settles another's (docs/holdings.md).
--
-- KEYS[1] holdings (hash) of the student's semester (lib/holding.lua)   KEYS[2] student
-- ARGV[1] lifetime (ms) of the D a swap leaves behind (below)   ARGV[2] the operation moving
--   them: a settled holding keeps it, so a retry of that operation knows its own work
--   (reserve.lua)
-- ARGV[3] the slot's generation when the saga began ('' none): "-" below applies only if
--   the slot was reloaded since (a lost node: the entry went with it); else no entry means
--   another move took it away, and the move is refused
-- ARGV[4..] groups of five: section id; the states it may move from (e.g. "R", "RP", "D";
--   "-" = no entry, which is then created from the JSON); the state it moves to (E | W, or
--   "-" to forget it); the entry JSON (used only to create it); "due" to move it only once
--   its deadline has passed (the sweeper), else "".
-- A holding that becomes E and names a section it replaces (sw, a swap) turns that one's
-- E into D in the same step: the caller drops its seat, then forgets it.
--
-- Reply: {{word per group}, {the sections a swap left as D}}; a word is OK | SAME (it was there already) | NOTDUE |
--   REFUSED:<state found, "-" for none>.

local life, op, began = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local reloaded = began ~= '' and loaded(KEYS[2]) ~= began
local words, leaving = {}, {}
local now = clock_ms()

local function leave(id)
  local raw = redis.call('HGET', KEYS[1], id)
  if not raw then return end
  local old = cjson.decode(raw)
  if old.h ~= 'E' then return end
  old.h, old.was, old.dl, old.op = 'D', 'E', now + life, op
  redis.call('HSET', KEYS[1], id, cjson.encode(old))
  leaving[#leaving + 1] = id
end

for i = 4, #ARGV, 5 do
  local id, from, to, json, flag = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local raw = redis.call('HGET', KEYS[1], id)
  local entry = raw and cjson.decode(raw)
  local found = entry and entry.h or '-'
  local allowed = from
  if not reloaded then allowed = string.gsub(from, '%-', '') end
  if found == to then
    words[#words + 1] = 'SAME'
  elseif not string.find(allowed, found, 1, true) then
    words[#words + 1] = 'REFUSED:' .. found
  elseif (found == 'R' or found == 'P' or found == 'D') and entry.op ~= op then
    words[#words + 1] = 'REFUSED:' .. found .. ':another'  -- in flight for another operation
  elseif flag == 'due' and entry and entry.dl and entry.dl >= now then
    words[#words + 1] = 'NOTDUE'
  elseif to == '-' then
    redis.call('HDEL', KEYS[1], id)
    words[#words + 1] = 'OK'
  else
    entry = entry or cjson.decode(json)
    if to == 'E' and entry.sw then
      leave(entry.sw)
      entry.sw = nil
    end
    entry.h, entry.dl, entry.op, entry.was = to, nil, op, nil
    redis.call('HSET', KEYS[1], id, cjson.encode(entry))
    words[#words + 1] = 'OK'
  end
end
return {words, leaving}
