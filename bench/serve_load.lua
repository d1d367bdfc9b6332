-- wrk script for bench/serve_load.py: replays pre-generated plugin requests, counts answers.
--
--   wrk -t2 -c64 -d10s --latency -s bench/serve_load.lua http://127.0.0.1:PORT -- DATA BASE_MS
--
-- DATA has one request per line: METHOD <tab> PATH <tab> JSON body. Bodies of stats batches
-- carry the token __TS__ where the event timestamp goes; each batch sent gets a fresh value
-- (BASE_MS minus a per-thread offset, plus a counter), so no two batches are the same events
-- and the server's idempotency check never turns the load into duplicates. Each thread starts
-- at its own offset in the list and cycles through it.
--
-- done() prints one line "WRK_RESULT {json}" and exits 1 if any answer was not 2xx or any
-- socket error happened: a benchmark of a server that fails is no benchmark.

local counter = 1
local threads = {}

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

local headers = {
  ["Content-Type"] = "application/json; charset=utf-8",
  ["User-Agent"] = "CapacitorUpdater/8.51.23 (com.example.bench) android/14",
}
local formatted = {}
local templates = {}
local n = 0
local i = 0
local ts = 0

checks = 0
stats = 0
ok = 0
bad = 0
up_to_date = 0
update = 0
failed = 0
other = 0
first_bad = ""

function init(args)
  local path = args[1]
  local base = tonumber(args[2])
  for line in io.lines(path) do
    local method, target, body = line:match("^(%u+)\t(%S+)\t(.*)$")
    if method then
      n = n + 1
      if body:find("__TS__", 1, true) then
        templates[n] = { method, target, body }
      else
        formatted[n] = wrk.format(method, target, headers, body)
      end
    end
  end
  if n == 0 then
    error("no requests in " .. path)
  end
  i = (id * 7919) % n
  ts = base - id * 10000000
end

function request()
  i = i + 1
  if i > n then
    i = 1
  end
  local r = formatted[i]
  if r then
    checks = checks + 1
    return r
  end
  local t = templates[i]
  ts = ts + 1
  stats = stats + 1
  local body = t[3]:gsub("__TS__", tostring(ts))
  return wrk.format(t[1], t[2], headers, body)
end

function response(status, hdrs, body)
  if status >= 200 and status < 300 then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then
      first_bad = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  end
  if body:find('"up_to_date"', 1, true) then
    up_to_date = up_to_date + 1
  elseif body:find('"url"', 1, true) then
    update = update + 1
  elseif body:find('"kind"', 1, true) then
    failed = failed + 1
  else
    other = other + 1
  end
end

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

function done(summary, latency, requests)
  local total = { checks = 0, stats = 0, ok = 0, bad = 0, up_to_date = 0, update = 0,
                  failed = 0, other = 0 }
  local firsts = {}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(total) do
      total[key] = total[key] + thread:get(key)
    end
    local fb = thread:get("first_bad")
    if fb ~= "" then
      table.insert(firsts, fb)
    end
  end
  local e = summary.errors
  local parts = {
    string.format('"duration_us":%d', summary.duration),
    string.format('"requests":%d', summary.requests),
    string.format('"bytes":%d', summary.bytes),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}',
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean),
  }
  for key, value in pairs(total) do
    table.insert(parts, string.format('"%s":%d', key, value))
  end
  table.insert(parts, '"first_bad":' .. quote(firsts[1] or ""))
  io.write("WRK_RESULT {" .. table.concat(parts, ",") .. "}\n")
  if total.bad > 0 or e.connect + e.read + e.write + e.timeout > 0 then
    io.write("FAIL: answers that were not 2xx, or socket errors (see WRK_RESULT)\n")
    os.exit(1)
  end
end
