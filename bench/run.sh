#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run.sh <gateway url>: measures the running suite with wrk (Debian package) on loopback.
#   version  GET /api/health/version/   answered by the gateway alone
#   ping     POST /api/health/ping/     one bus round trip (gateway -> auth -> gateway)
#   health   GET /api/health/           a bus round trip to all four services
# Each gets a short warm-up, then BENCH_DURATION (10s) with BENCH_THREADS (2) threads and
# BENCH_CONNECTIONS (64) connections. Prints requests/s and latency p50/p99/p99.9 for each and their
# ratio to `version`, and writes bench/results/latest.json (wrk's text in bench/results/*.txt).
# With the default list (or BENCH_FIGURES=1) it also measures, for issue 8's load figures:
#   h2o_const  bare h2o answering a constant (adi-h2o-const, bench/h2o_const.c; H2O_CONST_BIN,
#              default the release build's) on a free port with GATEWAY_THREADS (2) threads: the
#              gateway's own overhead is `version` beside it
#   rss        VmRSS/VmHWM of every process in ADI_PIDS_DIR before and after the load (bench/rss.py)
#   scaling    bench/scale.sh: 1 then 2 replicas of adi-auth (BENCH_SCALE=0 skips it)
# BENCH_PATHS="name=/path/ name=POST:/path/ ..." replaces the list, BENCH_AUTH=<access token>
# authenticates every request, BENCH_OUT names the JSON file (default latest.json), BENCH_TIMEOUT
# is wrk's --timeout (2s: a request slower than that counts as a timeout error). Exits 1 when a
# run saw errors or non-2xx answers (the figures are then not comparable), after writing the
# results.
set -euo pipefail

url="${1:?usage: bench/run.sh <gateway url>}"
url="${url%/}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$HERE/results"
DURATION=${BENCH_DURATION:-10s}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-64}
WARMUP=${BENCH_WARMUP:-2s}
TIMEOUT=${BENCH_TIMEOUT:-2s}
PATHS=${BENCH_PATHS:-"version=/api/health/version/ ping=POST:/api/health/ping/ health=/api/health/"}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3
if [[ -z ${BENCH_PATHS:-} ]]; then FIGURES=${BENCH_FIGURES:-1}; else FIGURES=${BENCH_FIGURES:-0}; fi
H2O_CONST=${H2O_CONST_BIN:-$HERE/../build/release/bench/adi-h2o-const}

command -v wrk >/dev/null || {
    echo "run.sh: wrk not found (apt-get install wrk)" >&2
    exit 1
}
mkdir -p "$OUT"

const_pid=
stop_const() {
    [[ -n $const_pid ]] || return 0
    kill -TERM "$const_pid" 2>/dev/null || true
    wait "$const_pid" 2>/dev/null || true
    const_pid=
}
trap stop_const EXIT
extras=()
if [[ $FIGURES == 1 ]]; then
    [[ -n ${ADI_PIDS_DIR:-} ]] || { echo "run.sh: ADI_PIDS_DIR is not set (BENCH_FIGURES=1)" >&2; exit 1; }
    [[ -x $H2O_CONST ]] || { echo "run.sh: $H2O_CONST not built (cmake --build --preset release)" >&2; exit 1; }
    rm -f "$OUT/scale.json"
    "$PY" "$HERE/rss.py" "$ADI_PIDS_DIR" "$OUT/rss-before.json"
    # Bare h2o on a free port (it prints "port <n>" once it listens).
    "$H2O_CONST" 0 "${GATEWAY_THREADS:-2}" >"$OUT/h2o_const.port" &
    const_pid=$!
    for _ in $(seq 1 100); do
        [[ -s $OUT/h2o_const.port ]] && break
        sleep 0.05
    done
    port=$(sed -n 's/^port //p' "$OUT/h2o_const.port")
    [[ -n $port ]] || { echo "run.sh: adi-h2o-const did not start" >&2; exit 1; }
    extras=("h2o_const=http://127.0.0.1:$port/api/health/version/")
fi

results=()
for item in $PATHS "${extras[@]}"; do
    name=${item%%=*}
    path=${item#*=}
    base=$url
    if [[ $path == http://* ]]; then # an extra server: its own base URL
        base=${path%/api/*}
        path=/api/${path#*/api/}
    fi
    method=GET
    if [[ "$path" == *:* ]]; then
        method=${path%%:*}
        path=${path#*:}
    fi
    body=()
    [[ $method != GET ]] && body=(-H 'Content-Type: application/json' --data "${BENCH_BODY:-{\}}")
    auth=()
    [[ -n ${BENCH_AUTH:-} ]] && auth=(-H "Authorization: Bearer $BENCH_AUTH")
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$method" "${body[@]}" \
        "${auth[@]}" "$base$path" || true)
    if [[ "$code" != 2?? ]]; then
        echo "run.sh: $method $base$path answers $code, not 2xx: is the suite up?" >&2
        exit 1
    fi
    echo "== $name: $method $path (warm-up $WARMUP, then $DURATION, $THREADS threads, $CONNS connections)"
    export BENCH_METHOD=$method
    # BENCH_WARMUP=0 skips the warm-up (a warm-up's requests still running on the server would
    # overlap the measured run, e.g. logins beyond the hashing bound answer 503).
    [[ $WARMUP == 0 ]] ||
        wrk -t "$THREADS" -c "$CONNS" -d "$WARMUP" --timeout "$TIMEOUT" -s "$HERE/report.lua" \
            "$base$path" >/dev/null
    wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" --timeout "$TIMEOUT" --latency \
        -s "$HERE/report.lua" "$base$path" >"$OUT/$name.txt"
    grep -v '^ADI_RESULT' "$OUT/$name.txt"
    results+=("$name" "$method $path" "$(sed -n 's/^ADI_RESULT //p' "$OUT/$name.txt")")
done
s=0
if [[ $FIGURES == 1 ]]; then
    stop_const
    "$PY" "$HERE/rss.py" "$ADI_PIDS_DIR" "$OUT/rss-after.json"
    if [[ ${BENCH_SCALE:-1} == 1 ]]; then
        "$HERE/scale.sh" "$url" || s=1
    fi
fi

"$PY" - "$OUT/${BENCH_OUT:-latest.json}" "$url" "$DURATION" "$THREADS" "$CONNS" "$FIGURES" \
    "${results[@]}" <<'PY' || s=1
import datetime, json, os, platform, subprocess, sys

out, url, duration, threads, conns, figures = sys.argv[1:7]
rest = sys.argv[7:]
runs = {}
bad = False
for i in range(0, len(rest), 3):
    name, path, raw = rest[i:i + 3]
    r = json.loads(raw)
    secs = r["duration_us"] / 1e6
    lat = {k: round(v / 1000.0, 3) for k, v in r["latency_us"].items()}
    errors = sum(r["errors"].values())
    bad = bad or errors > 0
    runs[name] = {
        "request": path,
        "requests": r["requests"],
        "seconds": round(secs, 3),
        "requests_per_sec": round(r["requests"] / secs, 1) if secs else 0.0,
        "latency_ms": lat,
        "errors": r["errors"],
    }

def rev():
    try:
        here = os.path.dirname(os.path.abspath(out))
        return subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return None

doc = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "commit": rev(),
    "gateway": url,
    "wrk": {"duration": duration, "threads": int(threads), "connections": int(conns)},
    "machine": {"cpus": os.cpu_count(), "system": platform.platform()},
    "runs": runs,
}
print()
print(f"{'run':<10} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'p99.9 ms':>9} {'errors':>7}")
for name, r in runs.items():
    l = r["latency_ms"]
    print(f"{name:<10} {r['requests_per_sec']:>10.1f} {l['p50']:>9.3f} {l['p99']:>9.3f} "
          f"{l['p999']:>9.3f} {sum(r['errors'].values()):>7}")
def ratio(a, b):
    return round(a / b, 2) if b else None
if "version" in runs:
    v = runs["version"]
    doc["ratio_to_version"] = {}
    for name, r in runs.items():
        if name in ("version", "h2o_const"):
            continue
        q = {
            "requests_per_sec": ratio(r["requests_per_sec"], v["requests_per_sec"]),
            "p50": ratio(r["latency_ms"]["p50"], v["latency_ms"]["p50"]),
            "p99": ratio(r["latency_ms"]["p99"], v["latency_ms"]["p99"]),
        }
        doc["ratio_to_version"][name] = q
        print(f"{name}/version: throughput x{q['requests_per_sec']}, p50 x{q['p50']}, "
              f"p99 x{q['p99']}")
if figures == "1":
    here = os.path.dirname(os.path.abspath(out))
    def load(name):
        try:
            with open(os.path.join(here, name)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None
    if "version" in runs and "h2o_const" in runs:
        v, c = runs["version"], runs["h2o_const"]
        per_req = lambda r: 1e6 / r["requests_per_sec"] if r["requests_per_sec"] else 0.0
        doc["gateway_overhead"] = {
            "gateway_rps": v["requests_per_sec"], "h2o_const_rps": c["requests_per_sec"],
            "throughput_ratio": ratio(v["requests_per_sec"], c["requests_per_sec"]),
            "cpu_us_per_request_added": round(per_req(v) - per_req(c), 2),
            "p50_ms_added": round(v["latency_ms"]["p50"] - c["latency_ms"]["p50"], 3),
            "p99_ms_added": round(v["latency_ms"]["p99"] - c["latency_ms"]["p99"], 3),
        }
        o = doc["gateway_overhead"]
        print(f"gateway overhead (version vs bare h2o): throughput x{o['throughput_ratio']}, "
              f"{o['cpu_us_per_request_added']:+} us/request, p50 {o['p50_ms_added']:+} ms, "
              f"p99 {o['p99_ms_added']:+} ms")
    before, after = load("rss-before.json"), load("rss-after.json")
    if before is not None and after is not None:
        doc["rss_kb"] = {b: {"before": before[b]["rss_kb"], "after": after.get(b, {}).get("rss_kb"),
                             "hwm": after.get(b, {}).get("hwm_kb")} for b in before}
        print(f"\n{'process':<16} {'RSS before MB':>14} {'RSS after MB':>13} {'HWM MB':>8}")
        mb = lambda k: f"{k / 1024:.1f}" if k is not None else "gone"
        for b, m in doc["rss_kb"].items():
            print(f"{b:<16} {mb(m['before']):>14} {mb(m['after']):>13} {mb(m['hwm']):>8}")
    scale = load("scale.json")
    if scale is not None:
        doc["scaling"] = scale
doc["valid"] = not bad
with open(out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
print(f"written {out}")
if bad:
    print("run.sh: some requests failed or answered non-2xx: the figures are not comparable",
          file=sys.stderr)
    sys.exit(1)
PY
exit $s
