-- refresh.lua: staff changed a section's rules (its course's credits, its meetings or
-- links): the student's holding of it, in whatever state (R, W, P, E, D), takes the new
-- copy of them, so what the rules count (credits, meeting time) is the catalog's at once,
-- not after a rebuild. The holding's state, deadline and operation are left as they are:
-- no move, so no saga of the student is disturbed. A holding over the credit limit or
-- clashing with another after it stays (docs/holdings.md, "Rule changes").
--
-- KEYS[1] holdings (hash) of the section's semester (lib/holding.lua)
-- ARGV[1] section id   ARGV[2] JSON {c, cr, m, l} (domain/wire.py HoldingField)
--
-- Reply: the state of the holding refreshed, or '-' when the student does not hold it
--   (nothing written).

local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return '-' end
local entry, rules = cjson.decode(raw), cjson.decode(ARGV[2])
entry.c, entry.cr, entry.m, entry.l = rules.c, rules.cr, rules.m, rules.l
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
return entry.h
