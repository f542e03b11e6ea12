-- SPDX-License-Identifier: MIT
--
-- wrk reporter for bench/run.sh: after the run, prints one line "ADI_RESULT {json}" with the
-- request count, the duration, the error counts and the latency percentiles in microseconds, so
-- run.sh reads exact numbers instead of wrk's rounded text. BENCH_METHOD (default GET) and
-- BENCH_BODY (a JSON body, default {}) make every request a POST or another method.
local method = os.getenv("BENCH_METHOD")
if method and method ~= "" and method ~= "GET" then
    wrk.method = method
    wrk.body = os.getenv("BENCH_BODY") or "{}"
    wrk.headers["Content-Type"] = "application/json"
end

-- BENCH_AUTH: an access token sent as "Authorization: Bearer <token>" with every request.
local token = os.getenv("BENCH_AUTH")
if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end

done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'ADI_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
        '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
        '"latency_us": {"min": %d, "mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, ' ..
        '"p999": %d}}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency.min, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency:percentile(99.9)))
end
