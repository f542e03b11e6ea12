-- SPDX-License-Identifier: MIT
--
-- wrk script for bench/vault.sh: every request is POST /api/platform-credentials/ creating a new
-- credential (a unique account id per thread and request, a random 64-byte access token) as the
-- ADMIN whose access token is BENCH_AUTH. After the run prints "ADI_RESULT {json}" in the format
-- of bench/report.lua.
local token = os.getenv("BENCH_AUTH") or ""
local threads = {}
local counter = 0

-- `me` (a global of each thread's Lua state) numbers the threads.
function setup(thread)
    thread:set("me", #threads + 1)
    table.insert(threads, thread)
end

function init(args)
    math.randomseed(os.time() + (me or 0) * 7919)
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

local function random_token()
    local t = {}
    for i = 1, 64 do
        local k = math.random(1, #alphabet)
        t[i] = alphabet:sub(k, k)
    end
    return table.concat(t)
end

local stamp = tostring(os.time())

request = function()
    counter = counter + 1
    local body = string.format(
        '{"provider": "GOOGLE", "account_id": "wrk-%s-%d-%d", "access_token": "%s"}',
        stamp, me or 0, counter, random_token())
    return wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["Authorization"] = "Bearer " .. token,
    }, body)
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
