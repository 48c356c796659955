-- once.lua: like graphql.lua, but each line of the data file is sent exactly once (the
-- rush: every student's request, then the end). Run from the repository's root:
--
-- wrk -t1 -c500 -d120s --timeout 30s -s bench/wrk/once.lua URL -- DATA [LOG]
--
-- wrk asks delay() before every request: a connection that finds no line left waits for
-- good. Once every line has been answered the script interrupts wrk (SIGINT, as Ctrl-C
-- would): wrk's main thread sleeps for the whole -d otherwise, and counts that time.

dofile("bench/wrk/graphql.lua")

local ffi = require("ffi")
ffi.cdef("int getpid(void); int kill(int pid, int sig);")

local reserved = 0
local FOREVER_MS = 3600 * 1000

function delay()
  reserved = reserved + 1
  if reserved > #bodies then return FOREVER_MS end
  return 0
end

function finished()
  if answered >= #bodies then
    if log then log:close() end
    ffi.C.kill(ffi.C.getpid(), 2)
  end
end
