-- settle.lua: turn reservations into holdings once the section scripts have answered, or
-- release them. A swap's new section becoming ENROLLED forgets the section it replaces;
-- the caller drops that one from its section in the same step.
--
-- KEYS[1] holdings (hash) of the student's semester (see reserve.lua)
-- ARGV: triples (section id, outcome, entry JSON): outcome E (enrolled) or W (waiting)
--       writes the entry (re-created from the JSON if a sweep released it meanwhile); X
--       releases a reservation, only while it still is one.
--
-- Reply: the section ids swapped away.

local swapped = {}
for i = 1, #ARGV, 3 do
  local id, outcome = ARGV[i], ARGV[i + 1]
  local raw = redis.call('HGET', KEYS[1], id)
  if outcome == 'X' then
    if raw and cjson.decode(raw).h == 'R' then redis.call('HDEL', KEYS[1], id) end
  else
    local entry = cjson.decode(raw or ARGV[i + 2])
    if outcome == 'E' and entry.sw then
      redis.call('HDEL', KEYS[1], entry.sw)
      swapped[#swapped + 1] = entry.sw
      entry.sw = nil
    end
    entry.h, entry.dl = outcome, nil
    redis.call('HSET', KEYS[1], id, cjson.encode(entry))
  end
end
return swapped
