#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/auth.sh <gateway url>: the auth figures of issue 3, against a running suite whose env
# (REDIS_URL, DATABASE_URL, ADI_BIN_DIR, PASSWORD_ITERATIONS) comes from tests/harness/with-env.sh.
#   me      GET /api/me/      token verified at the gateway, one bus round trip
#   users   GET /api/users/   a tenant of 20 users, ordered by e-mail, roles included
#   login   POST /api/auth/login/ (2 connections = the default hashing bound, WORKERS / 2: each
#           login is one PBKDF2 at PASSWORD_ITERATIONS; beyond the bound logins answer 503)
# beside the raw PBKDF2-HMAC-SHA256 rate of this machine at the same iteration count (OpenSSL
# through Python's hashlib, one core). Writes bench/results/auth.json.
set -euo pipefail
url="${1:?usage: bench/auth.sh <gateway url>}"
url="${url%/}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
ITER=${PASSWORD_ITERATIONS:-720000}
tenant=$("$PY" -c 'import uuid; print(uuid.uuid4())')
export BENCH_PASSWORD="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

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

BENCH_AUTH=$token BENCH_OUT=auth-read.json BENCH_PATHS="me=/api/me/ users=/api/users/" \
    "$HERE/run.sh" "$url"
BENCH_BODY=$body BENCH_OUT=auth-login.json BENCH_WARMUP=0 BENCH_CONNECTIONS=2 BENCH_THREADS=1 \
    BENCH_PATHS="login=POST:/api/auth/login/" "$HERE/run.sh" "$url"

"$PY" - "$ITER" "$HERE/results" <<'PY'
import hashlib, json, os, sys, time
it, out = int(sys.argv[1]), sys.argv[2]
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < 5.0 or n < 2:
    hashlib.pbkdf2_hmac("sha256", b"password", b"saltsaltsaltsaltsaltsa", it)
    n += 1
rate = n / (time.perf_counter() - t0)
login = json.load(open(os.path.join(out, "auth-login.json")))["runs"]["login"]
doc = {"iterations": it, "pbkdf2_per_sec_one_core": round(rate, 2),
       "pbkdf2_per_sec_all_cores": round(rate * (os.cpu_count() or 1), 2),
       "logins_per_sec": login["requests_per_sec"]}
json.dump(doc, open(os.path.join(out, "auth.json"), "w"), indent=2)
print(f"\nPBKDF2-HMAC-SHA256 at {it} iterations: {rate:.2f}/s on one core "
      f"({rate * (os.cpu_count() or 1):.2f}/s on {os.cpu_count()} cores); "
      f"logins through the suite: {login['requests_per_sec']}/s")
PY
