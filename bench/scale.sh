#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/scale.sh <gateway url>: scaling of one service from 1 to 2 replicas, against a running
# suite whose env (ADI_PIDS_DIR, ADI_LOG_DIR, ADI_BIN_DIR, DATABASE_URL) comes from
# tests/harness/with-env.sh. Measures with bench/run.sh (BENCH_SCALE_PATHS, default
#   ping  POST /api/health/ping/   one bus round trip to auth
#   me    GET /api/me/             token check + an auth round trip with a tenant transaction)
# with the suite's one replica of BENCH_SCALE_SERVICE (auth), then starts a second replica with the
# environment of the first (read from /proc/<pid>/environ, as tests/faults/faults.py does; its
# own CONSUMER_NAME and a free OPS_PORT), waits for its /readyz, measures again and stops it
# (SIGTERM; it must exit within its SHUTDOWN_GRACE_MS). Writes bench/results/scale-1.json,
# scale-2.json and scale.json. Exits 1 when a run saw errors or the replica misbehaved.
set -euo pipefail
url="${1:?usage: bench/scale.sh <gateway url>}"
url="${url%/}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$HERE/results"
PY=/usr/bin/python3
SVC=${BENCH_SCALE_SERVICE:-auth}
PATHS=${BENCH_SCALE_PATHS:-"ping=POST:/api/health/ping/ me=/api/me/"}
: "${ADI_PIDS_DIR:?scale.sh: ADI_PIDS_DIR is not set (run through tests/harness/with-env.sh)}"
mkdir -p "$OUT"

orig=$(<"$ADI_PIDS_DIR/adi-$SVC.pid")
exe=$(readlink "/proc/$orig/exe")

# A user of a tenant of its own for GET /api/me/ (cheap hash: only one login).
token=
if [[ $PATHS == *"/api/me/"* ]]; then
    tenant=$("$PY" -c 'import uuid; print(uuid.uuid4())')
    BENCH_PASSWORD="scale-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    export BENCH_PASSWORD
    email="scale-${tenant:0:8}@bench.example"
    PASSWORD_ITERATIONS=1000 "$ADI_BIN_DIR/adi-admin" create-user --tenant "$tenant" \
        --email "$email" --password-env BENCH_PASSWORD --role VIEWER >/dev/null
    body=$(printf '{"username": "%s", "password": "%s"}' "$email" "$BENCH_PASSWORD")
    token=$(curl -s --max-time 30 -H 'Content-Type: application/json' -d "$body" \
        "$url/api/auth/login/" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["access"])')
fi

s=0
echo "== scaling adi-$SVC: 1 replica"
BENCH_FIGURES=0 BENCH_AUTH=$token BENCH_OUT=scale-1.json BENCH_PATHS=$PATHS "$HERE/run.sh" "$url" ||
    s=1

# The second replica: the first one's environment, its own consumer name and ops port.
mapfile -d '' envs <"/proc/$orig/environ"
ops=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
envs+=("OPS_PORT=$ops" "CONSUMER_NAME=bench-$SVC-2-$$")
grace=$(printf '%s\n' "${envs[@]}" | sed -n 's/^SHUTDOWN_GRACE_MS=//p' | tail -1)
grace=${grace:-25000}
log="${ADI_LOG_DIR:-$OUT}/adi-$SVC.bench2.log"
env -i "${envs[@]}" "$exe" </dev/null >>"$log" 2>&1 &
pid2=$!
trap 'kill -TERM $pid2 2>/dev/null || true' EXIT
ready=0
for _ in $(seq 1 300); do # 0.1 s each: 30 s
    if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$ops/readyz"; then
        ready=1
        break
    fi
    kill -0 "$pid2" 2>/dev/null || break
    sleep 0.1
done
if [[ $ready != 1 ]]; then
    echo "scale.sh: the second adi-$SVC (pid $pid2) is not ready; see $log" >&2
    exit 1
fi
echo "== scaling adi-$SVC: 2 replicas (second: pid $pid2)"
BENCH_FIGURES=0 BENCH_AUTH=$token BENCH_OUT=scale-2.json BENCH_PATHS=$PATHS "$HERE/run.sh" "$url" ||
    s=1
rss2=$("$PY" -c 'import sys; print(next((l.split()[1] for l in open(sys.argv[1]) if l.startswith("VmHWM:")), 0))' \
    "/proc/$pid2/status")

t0=$(date +%s%N)
kill -TERM "$pid2"
rc=0
wait "$pid2" || rc=$?
trap - EXIT
stop_ms=$((($(date +%s%N) - t0) / 1000000))
if [[ $rc != 0 ]] || ((stop_ms > grace)); then
    echo "scale.sh: the second adi-$SVC exited with $rc after $stop_ms ms (grace $grace ms)" >&2
    s=1
fi

"$PY" - "$OUT" "$SVC" "$stop_ms" "$rc" "$rss2" <<'PY'
import json, os, sys
out, svc, stop_ms, rc, hwm2 = sys.argv[1:]
one = json.load(open(os.path.join(out, "scale-1.json")))["runs"]
two = json.load(open(os.path.join(out, "scale-2.json")))["runs"]
doc = {"service": svc, "second_replica": {"exit_status": int(rc), "stop_ms": int(stop_ms),
                                          "hwm_kb": int(hwm2)}, "runs": {}}
print(f"\n{'adi-' + svc:<10} {'1 rep req/s':>12} {'2 rep req/s':>12} {'x':>6} "
      f"{'p99 ms 1':>9} {'p99 ms 2':>9}")
for name, a in one.items():
    b = two.get(name)
    if b is None:
        continue
    x = round(b["requests_per_sec"] / a["requests_per_sec"], 2) if a["requests_per_sec"] else None
    doc["runs"][name] = {"request": a["request"],
                         "replicas_1": {"requests_per_sec": a["requests_per_sec"],
                                        "latency_ms": a["latency_ms"]},
                         "replicas_2": {"requests_per_sec": b["requests_per_sec"],
                                        "latency_ms": b["latency_ms"]},
                         "speedup": x}
    print(f"{name:<10} {a['requests_per_sec']:>12.1f} {b['requests_per_sec']:>12.1f} {x:>6} "
          f"{a['latency_ms']['p99']:>9.3f} {b['latency_ms']['p99']:>9.3f}")
with open(os.path.join(out, "scale.json"), "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
PY
exit $s
