-- pending.lua: some students' entries in one shard's stream: the changes of theirs the
-- persister has not acknowledged yet (it trims every entry it acknowledges, streams.py
-- ack), for a read that merges them into the record (domain/schedule.py). One script, so
-- the filtering stays in Redis: only the students' own entries cross the network.
--
-- KEYS[1] the shard's stream
-- ARGV[1..] student ids
--
-- Reply: the entries whose student (field u, domain/wire.py StreamField) is one of them,
--   oldest first, as XRANGE gives them: {id, {field, value, ...}}.

local page = 512
local wanted = {}
for _, student in ipairs(ARGV) do wanted[student] = true end
local found = {}
local start = '-'
while true do
  local entries = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', page)
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'u' then
        if wanted[fields[i + 1]] then found[#found + 1] = entry end
        break
      end
    end
  end
  if #entries < page then break end
  -- The next page starts just past the last id ("<ms>-<seq>"): no exclusive range before 6.2.
  local last = entries[#entries][1]
  local dash = string.find(last, '-', 1, true)
  start = string.sub(last, 1, dash) .. (tonumber(string.sub(last, dash + 1)) + 1)
end
return found
