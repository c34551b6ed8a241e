-- wrk script of tests/bench/ratios.sh: reviewers approving distinct pending requests.
-- Each request POSTs {"verdict":"approve"} to /api/v1/requests/{id}/decisions for the next id
-- of $IDS_FILE (one a line; wrk thread k of $THREADS takes lines k, k+THREADS, ...), with the
-- terminal tokens of $TOKENS (comma-separated) in turn. A thread whose ids run out stops; when
-- they all do, the rate is taken over the time they ran (wrk itself would count the whole -d).
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local function now_s()
  ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

local body = '{"verdict":"approve"}'
local tokens = {}
for token in string.gmatch(assert(os.getenv("TOKENS"), "TOKENS is not set"), "[^,]+") do
  tokens[#tokens + 1] = token
end
local threads = tonumber(os.getenv("THREADS") or "2")
local counter = 0
local all = {}

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  all[#all + 1] = thread
end

local ids, next_id = {}, 1
function init(args)
  local file = assert(os.getenv("IDS_FILE"), "IDS_FILE is not set")
  local line_no = 0
  for line in io.lines(file) do
    if (line_no % threads) == (tid - 1) and line ~= "" then
      ids[#ids + 1] = line
    end
    line_no = line_no + 1
  end
end

function request()
  local id = ids[next_id]
  if id == nil then
    if not ran_out_at then
      ran_out_at = now_s()
    end
    wrk.thread:stop()
    return wrk.format("GET", "/healthz")
  end
  if next_id == 1 then
    started_at = now_s()
  end
  next_id = next_id + 1
  return wrk.format("POST", "/api/v1/requests/" .. id .. "/decisions", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[(next_id % #tokens) + 1],
  }, body)
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local first, last, ran_out = nil, nil, 0
  for _, thread in ipairs(all) do
    local started, ended = thread:get("started_at"), thread:get("ran_out_at")
    if started and (not first or started < first) then first = started end
    if ended then
      ran_out = ran_out + 1
      if not last or ended > last then last = ended end
    end
  end
  if ran_out == #all and first and last then
    s = last - first
  end
  local e = summary.errors
  local ok = summary.requests - e.status
  io.write(string.format(
    'SUMMARY {"requests":%d,"ok":%d,"seconds":%.2f,"rps":%.0f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"errors":%d,"status_errors":%d,"threads_out_of_ids":%d}\n',
    summary.requests, ok, s, ok / s, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.status + e.timeout, e.status, ran_out))
end
