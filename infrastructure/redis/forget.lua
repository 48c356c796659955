-- forget.lua: forget a section the student no longer holds. After a drop (cascade = 1) also
-- every section that can no longer be held without it (a lecture whose last linked lab it
-- was), which the caller drops in the same step; after leaving a line (0), only it.
--
-- KEYS[1] holdings (hash) of the student's semester (see reserve.lua)
-- ARGV[1] the section id   ARGV[2] cascade (1 | 0)
--
-- Reply: the dependent section ids, also forgotten.

redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[2] ~= '1' then return {} end
local held = {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do held[raw[i]] = cjson.decode(raw[i + 1]) end

local dependants, changed = {}, true
while changed do
  changed = false
  for id, entry in pairs(held) do
    if #entry.l > 0 then
      local keep = false
      for _, partner in ipairs(entry.l) do
        if held[partner] then keep = true break end
      end
      if not keep then
        held[id], changed = nil, true
        redis.call('HDEL', KEYS[1], id)
        dependants[#dependants + 1] = id
      end
    end
  end
end
return dependants
