-- wrk script of tests/bench/ratios.sh, for Signoff and the baseline alike: POST the body in
-- $BODY_FILE with the bearer credential in $BEARER, and print one "SUMMARY {json}" line.
-- Modelled on the baseline's post.lua; "ok" counts answers below 400 (wrk counts the rest as
-- status errors), and "rps" is ok answers per second.
local f = assert(io.open(assert(os.getenv("BODY_FILE"), "BODY_FILE is not set"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local bearer = os.getenv("BEARER")
if bearer and bearer ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. bearer
end

function done(summary, latency, requests)
  local s = summary.duration / 1e6
  local e = summary.errors
  local ok = summary.requests - e.status
  io.write(string.format(
    'SUMMARY {"requests":%d,"ok":%d,"seconds":%.2f,"rps":%.0f,"p50_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"errors":%d,"status_errors":%d}\n',
    summary.requests, ok, s, ok / s, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.status + e.timeout, e.status))
end
