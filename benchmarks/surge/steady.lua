-- wrk script of the surge benchmark (benchmarks/surge/steady.py); prints one JSON line.
--   wrk ... -s steady.lua http://gw/healthz -- healthz
--   wrk ... -s steady.lua http://gw/v1/appointments/appointments -- soldout <patients.tsv>
-- soldout: each request is the next patient's booking (token, patient id, the patient's own
-- address as X-Forwarded-For from the trusted loopback proxy), a browser User-Agent and a
-- fresh Idempotency-Key; patients.tsv lines are "token<TAB>patient_id<TAB>address<TAB>schedule".
local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
  table.insert(threads, thread)
end

local UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 " ..
  "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI"
local mode, patients, cursor, sent = "healthz", {}, 0, 0
n200, n201, n202, n409sold, n409other, n429, n5xx, nother = 0, 0, 0, 0, 0, 0, 0, 0

function init(args)
  mode = args[1] or "healthz"
  if mode == "soldout" then
    for line in io.lines(args[2]) do
      local token, pid, addr, schedule = line:match("^(%S+)\t(%S+)\t(%S+)\t(%S+)$")
      if token then table.insert(patients, {token, pid, addr, schedule}) end
    end
    cursor = (thread_id - 1) * 7919  -- threads start at different patients
  end
end

function request()
  if mode ~= "soldout" then return wrk.format("GET") end
  cursor = cursor % #patients + 1
  sent = sent + 1
  local p = patients[cursor]
  local headers = {
    ["Authorization"] = "Bearer " .. p[1],
    ["Content-Type"] = "application/json",
    ["User-Agent"] = UA,
    ["X-Forwarded-For"] = p[3],
    ["Idempotency-Key"] = "steady-" .. thread_id .. "-" .. sent,
  }
  local body = '{"patient_id":"' .. p[2] .. '","schedule_id":"' .. p[4] .. '"}'
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status == 200 then n200 = n200 + 1
  elseif status == 201 then n201 = n201 + 1
  elseif status == 202 then n202 = n202 + 1
  elseif status == 409 and body and body:find("slot_sold_out", 1, true) then n409sold = n409sold + 1
  elseif status == 409 then n409other = n409other + 1
  elseif status == 429 then n429 = n429 + 1
  elseif status >= 500 then n5xx = n5xx + 1
  else nother = nother + 1 end
end

function done(summary, latency, requests)
  local counts = {n200 = 0, n201 = 0, n202 = 0, n409sold = 0, n409other = 0, n429 = 0, n5xx = 0, nother = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(counts) do counts[name] = counts[name] + (thread:get(name) or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},' ..
    '"statuses":{"200":%d,"201":%d,"202":%d,"409_slot_sold_out":%d,"409_other":%d,"429":%d,"5xx":%d,"other":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout,
    counts.n200, counts.n201, counts.n202, counts.n409sold, counts.n409other, counts.n429, counts.n5xx, counts.nother))
end
