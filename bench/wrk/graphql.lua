-- graphql.lua: wrk posts prepared GraphQL requests to /graphql, one line of a data file
-- per request, cycling through the file until wrk's duration ends.
--
-- wrk -t1 -c200 -d10s -s bench/wrk/graphql.lua http://127.0.0.1:PORT -- DATA [LOG]
--   DATA  lines "<JWT>\t<JSON body>", written by bench/http.py
--   LOG   if given, every response body is written to LOG.<thread>, one per line (once.lua
--         closes it when done)
--
-- At the end it prints one line "WRK {json}": requests, seconds, latency percentiles (us),
-- socket errors, non-2xx answers, answers with GraphQL errors (by extensions.code), and
-- the register/drop outcomes counted in the bodies.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  tokens, bodies = {}, {}
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    tokens[#tokens + 1] = "Bearer " .. line:sub(1, tab - 1)
    bodies[#bodies + 1] = line:sub(tab + 1)
  end
  if args[2] and args[2] ~= "" then
    log = io.open(args[2] .. "." .. id, "w")
  end
  headers = { ["Content-Type"] = "application/json" }
  sent, answered, errors, outcomes = 0, 0, {}, {}
end

function request()
  sent = sent + 1
  local n = (sent - 1) % #bodies + 1
  headers["Authorization"] = tokens[n]
  return wrk.format("POST", "/graphql", headers, bodies[n])
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then
    errors["http_" .. status] = (errors["http_" .. status] or 0) + 1
  elseif body:find('"errors"', 1, true) then
    local code = body:match('"code":%s*"([%u_]+)"') or "unknown"
    errors[code] = (errors[code] or 0) + 1
  else
    for outcome in body:gmatch('"outcome":%s*"([%u_]+)"') do
      outcomes[outcome] = (outcomes[outcome] or 0) + 1
    end
  end
  if log then log:write(body, "\n") end
  if finished then finished() end
end

local function json_counts(name)
  local parts = {}
  for _, thread in ipairs(threads) do
    for k, v in pairs(thread:get(name)) do
      parts[k] = (parts[k] or 0) + v
    end
  end
  local out = {}
  for k, v in pairs(parts) do out[#out + 1] = string.format('"%s": %d', k, v) end
  return "{" .. table.concat(out, ", ") .. "}"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "seconds": %.6f, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "socket_errors": %d, "timeouts": %d, "non_2xx": %d, ' ..
    '"errors": %s, "outcomes": %s}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect + e.read + e.write, e.timeout, e.status,
    json_counts("errors"), json_counts("outcomes")))
end
