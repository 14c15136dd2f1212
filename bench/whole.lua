-- wrk script for `make bench`: POST one chat completion (whole answer) with a Bearer key, and
-- print the summary as one JSON line that bench/run.py reads. BENCH_MODEL and BENCH_KEY come from
-- the environment.
local model = os.getenv("BENCH_MODEL") or "whole"
local key = os.getenv("BENCH_KEY") or "none"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
wrk.body = '{"model":"' .. model .. '","max_tokens":16,'
  .. '"messages":[{"role":"user","content":"Say hi in one short sentence, please."}]}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"mean_us":%.1f,"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
      .. '"status_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
