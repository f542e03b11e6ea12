#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/auth.sh <gateway url>: the auth figures of issue 3, against a running suite whose env
# (REDIS_URL, DATABASE_URL, ADI_BIN_DIR, PASSWORD_ITERATIONS) comes from tests/harness/with-env.sh.
#   me      GET /api/me/      token verified at the gateway, one bus round trip
#   users   GET /api/users/   a tenant of 20 users, ordered by e-mail, roles included
#   login   POST /api/auth/login/ (2 connections = the default hashing bound, WORKERS / 2: each
#           login is one PBKDF2 at PASSWORD_ITERATIONS; beyond the bound logins answer 503), with
#           wrk's --timeout at BENCH_LOGIN_TIMEOUT (10s) so that a slow p99 is measured, not
#           counted as an error
#   storm   a login storm: BENCH_STORM_CONNECTIONS (16) connections logging in as fast as they
#           can, round robin over BENCH_STORM_USERS (4 per connection) accounts with the right
#           password, while a second wrk measures GET /api/me/ as `me` does: its requests/s and
#           p50/p99 beside the quiet ones. Beyond the hashing bound logins are refused 503 at once.
#           The gateway's login throttle counts a login as failed until it is answered (5 at once
#           on one account lock it; the suite lifts the per-address bound for loopback), so each
#           account has at most one login in flight, and nobody is locked out
# beside the raw PBKDF2-HMAC-SHA256 rate of this machine at the same iteration count (OpenSSL
# through Python's hashlib, one core), which is measured and written even when a wrk phase
# failed. BENCH_DURATION (10s) is each phase's length. Writes bench/results/auth.json; exits 1 when
# a phase failed (after writing it).
set -euo pipefail
url="${1:?usage: bench/auth.sh <gateway url>}"
url="${url%/}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$HERE/results"
PY=/usr/bin/python3
ITER=${PASSWORD_ITERATIONS:-720000}
DURATION=${BENCH_DURATION:-10s}
STORM_CONNS=${BENCH_STORM_CONNECTIONS:-16}
STORM_USERS=${BENCH_STORM_USERS:-$((4 * STORM_CONNS))}
tenant=$("$PY" -c 'import uuid; print(uuid.uuid4())')
BENCH_PASSWORD="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export BENCH_PASSWORD
mkdir -p "$OUT"
rm -f "$OUT/auth-read.json" "$OUT/auth-login.json" "$OUT/auth-storm-login.txt" \
    "$OUT/auth-storm-me.txt" "$OUT/auth.json"

# The admin logs in with a production-cost hash; the 19 others only need to exist.
"$ADI_BIN_DIR/adi-admin" create-user --tenant "$tenant" --email admin@bench.example \
    --password-env BENCH_PASSWORD --role ADMIN >/dev/null
for i in $(seq -w 1 19); do
    PASSWORD_ITERATIONS=1000 "$ADI_BIN_DIR/adi-admin" create-user --tenant "$tenant" \
        --email "user$i@bench.example" --password-env BENCH_PASSWORD --role VIEWER >/dev/null
done
body=$(printf '{"username": "admin@bench.example", "password": "%s"}' "$BENCH_PASSWORD")
token=$(curl -s --max-time 30 -H 'Content-Type: application/json' -d "$body" \
    "$url/api/auth/login/" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["access"])')
n=$(curl -s -H "Authorization: Bearer $token" "$url/api/users/" |
    "$PY" -c 'import json, sys; print(len(json.load(sys.stdin)))')
[[ $n == 20 ]] || { echo "auth.sh: the bench tenant has $n users, not 20" >&2; exit 1; }
# The storm's accounts, in a tenant of their own (cheap hashes: the first login upgrades them to
# PASSWORD_ITERATIONS, as it would an account migrated from an older configuration).
storm_tenant=$("$PY" -c 'import uuid; print(uuid.uuid4())')
for i in $(seq 1 "$STORM_USERS"); do
    PASSWORD_ITERATIONS=1000 "$ADI_BIN_DIR/adi-admin" create-user --tenant "$storm_tenant" \
        --email "storm$i@bench.example" --password-env BENCH_PASSWORD >/dev/null
done
# wrk's script for the storm: each request the next account's login; report.lua's ADI_RESULT
# line, then "ADI_CODES {status: count}" (no 429 means the throttle stayed out of the way).
cat >"$OUT/auth-storm.lua" <<LUA
dofile("$HERE/report.lua")
local report = done
local threads = {}
local users, password, n = tonumber(os.getenv("BENCH_STORM_USERS")), os.getenv("BENCH_PASSWORD"), 0
codes = {}
setup = function(thread)
    table.insert(threads, thread)
end
request = function()
    n = n % users + 1
    return wrk.format("POST", wrk.path, nil,
        string.format('{"username": "storm%d@bench.example", "password": "%s"}', n, password))
end
response = function(status, headers, body)
    codes[status] = (codes[status] or 0) + 1
end
done = function(summary, latency, requests)
    report(summary, latency, requests)
    local all, parts = {}, {}
    for _, t in ipairs(threads) do
        for k, v in pairs(t:get("codes")) do
            all[k] = (all[k] or 0) + v
        end
    end
    for k, v in pairs(all) do
        table.insert(parts, string.format('"%d": %d', k, v))
    end
    io.write("ADI_CODES {" .. table.concat(parts, ", ") .. "}\n")
end
LUA

# Every phase runs, and the figures are written, even when one before it failed.
s=0
BENCH_AUTH=$token BENCH_OUT=auth-read.json BENCH_PATHS="me=/api/me/ users=/api/users/" \
    "$HERE/run.sh" "$url" || s=1
BENCH_BODY=$body BENCH_OUT=auth-login.json BENCH_WARMUP=0 BENCH_CONNECTIONS=2 BENCH_THREADS=1 \
    BENCH_TIMEOUT=${BENCH_LOGIN_TIMEOUT:-10s} BENCH_PATHS="login=POST:/api/auth/login/" \
    "$HERE/run.sh" "$url" || s=1

# The storm: the login flood starts first and ends last, so /api/me/ is measured inside it.
storm_secs=$("$PY" -c 'import re, sys
m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", sys.argv[1])
print(int(float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[m[2]]) + 2 if m else 12)' "$DURATION")
echo "== storm: POST /api/auth/login/ (${storm_secs}s, $STORM_CONNS connections) with GET /api/me/" \
    "measured inside it ($DURATION, ${BENCH_THREADS:-2} threads, ${BENCH_CONNECTIONS:-64} connections)"
BENCH_METHOD=POST BENCH_AUTH='' BENCH_STORM_USERS=$STORM_USERS \
    wrk -t 1 -c "$STORM_CONNS" -d "${storm_secs}s" --timeout 10s --latency \
    -s "$OUT/auth-storm.lua" "$url/api/auth/login/" >"$OUT/auth-storm-login.txt" &
storm_pid=$!
sleep 1 # the flood is on before the measurement starts
BENCH_METHOD=GET BENCH_AUTH=$token \
    wrk -t "${BENCH_THREADS:-2}" -c "${BENCH_CONNECTIONS:-64}" -d "$DURATION" \
    --timeout "${BENCH_TIMEOUT:-2s}" --latency -s "$HERE/report.lua" "$url/api/me/" \
    >"$OUT/auth-storm-me.txt" || s=1
wait "$storm_pid" || s=1
grep -v '^ADI_RESULT' "$OUT/auth-storm-me.txt" || true

sleep 2 # the logins in flight when the flood stopped finish hashing before the PBKDF2 rate

"$PY" - "$ITER" "$OUT" "$STORM_CONNS" "$STORM_USERS" <<'PY' || s=1
import hashlib, json, os, sys, time
it, out = int(sys.argv[1]), sys.argv[2]
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < 5.0 or n < 2:
    hashlib.pbkdf2_hmac("sha256", b"password", b"saltsaltsaltsaltsaltsa", it)
    n += 1
rate = n / (time.perf_counter() - t0)
doc = {"iterations": it, "pbkdf2_per_sec_one_core": round(rate, 2),
       "pbkdf2_per_sec_all_cores": round(rate * (os.cpu_count() or 1), 2)}
ok = True

def load_run(name, run):
    """The run `run` of run.sh's JSON `name`, or None (the phase failed before writing it)."""
    global ok
    try:
        with open(os.path.join(out, name)) as f:
            d = json.load(f)
        ok = ok and d.get("valid", False)
        return d["runs"][run]
    except (OSError, ValueError, KeyError):
        ok = False
        return None

def load_wrk(name):
    """The ADI_RESULT (and ADI_CODES) lines of a wrk run of bench/report.lua, or None."""
    try:
        with open(os.path.join(out, name)) as f:
            lines = f.readlines()
        line = next(l for l in lines if l.startswith("ADI_RESULT "))
        r = json.loads(line[len("ADI_RESULT "):])
        codes = [json.loads(l[len("ADI_CODES "):]) for l in lines if l.startswith("ADI_CODES ")]
    except (OSError, ValueError, StopIteration):
        return None
    secs = r["duration_us"] / 1e6
    return {"requests": r["requests"], "seconds": round(secs, 3),
            "requests_per_sec": round(r["requests"] / secs, 1) if secs else 0.0,
            "latency_ms": {k: round(v / 1000.0, 3) for k, v in r["latency_us"].items()},
            "errors": r["errors"], "codes": codes[0] if codes else None}

login = load_run("auth-login.json", "login")
doc["logins_per_sec"] = login["requests_per_sec"] if login else None
quiet = load_run("auth-read.json", "me")
storm_me, storm_login = load_wrk("auth-storm-me.txt"), load_wrk("auth-storm-login.txt")
# The flood's non-2xx are its 503s (beyond the hashing bound): expected, not an error; a 429
# would mean the throttle took part. The measured /api/me/ must see no error at all.
if storm_me is None or storm_login is None or sum(storm_me["errors"].values()) > 0:
    ok = False
elif set(storm_login["codes"] or {"none": 0}) - {"200", "503"}:
    print(f"auth.sh: the storm's logins were answered {storm_login['codes']}, not only 200 "
          "and 503", file=sys.stderr)
    ok = False
doc["storm"] = {
    "me_quiet": quiet and {"requests_per_sec": quiet["requests_per_sec"],
                           "p50_ms": quiet["latency_ms"]["p50"],
                           "p99_ms": quiet["latency_ms"]["p99"]},
    "me": storm_me and {"requests_per_sec": storm_me["requests_per_sec"],
                        "p50_ms": storm_me["latency_ms"]["p50"],
                        "p99_ms": storm_me["latency_ms"]["p99"], "errors": storm_me["errors"]},
    "logins": storm_login and {
        "connections": int(sys.argv[3]), "accounts": int(sys.argv[4]),
        "requests_per_sec": storm_login["requests_per_sec"],
        "statuses": storm_login["codes"],  # 200, and 503 beyond the hashing bound
        "succeeded_per_sec": round((storm_login["requests"] - storm_login["errors"]["status"])
                                   / storm_login["seconds"], 2) if storm_login["seconds"] else 0.0,
    },
}
doc["valid"] = ok
with open(os.path.join(out, "auth.json"), "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
cores = os.cpu_count() or 1
print(f"\nPBKDF2-HMAC-SHA256 at {it} iterations: {rate:.2f}/s on one core "
      f"({rate * cores:.2f}/s on {cores} cores); logins through the suite: "
      f"{str(doc['logins_per_sec']) + '/s' if login else 'n/a (the phase failed)'}")
fmt = lambda r: (f"{r['requests_per_sec']:>10.1f} {r['p50_ms']:>9.3f} {r['p99_ms']:>9.3f}"
                 if r else f"{'n/a':>10} {'n/a':>9} {'n/a':>9}")
st = doc["storm"]
print(f"\n{'GET /api/me/':<22} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9}")
print(f"{'quiet':<22} {fmt(st['me_quiet'])}")
print(f"{'during a login storm':<22} {fmt(st['me'])}")
if st["logins"]:
    print(f"the storm: {st['logins']['requests_per_sec']} logins/s sent, "
          f"{st['logins']['succeeded_per_sec']}/s logged in (statuses "
          f"{st['logins']['statuses']}: 503 = refused at once beyond the hashing bound)")
print(f"written {os.path.join(out, 'auth.json')}")
if not ok:
    print("auth.sh: a phase failed or saw errors: its figures are missing or not comparable",
          file=sys.stderr)
    sys.exit(1)
PY
exit $s
