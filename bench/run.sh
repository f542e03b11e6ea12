#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/run.sh <gateway url>: measures the running suite with wrk (Debian package) on loopback.
#   version  GET /api/health/version/   answered by the gateway alone
#   ping     POST /api/health/ping/     one bus round trip (gateway -> auth -> gateway)
#   health   GET /api/health/           a bus round trip to all four services
# Each gets a short warm-up, then BENCH_DURATION (10s) with BENCH_THREADS (2) threads and
# BENCH_CONNECTIONS (64) connections. Prints requests/s and latency p50/p90/p99 for each and their
# ratio to `version`, and writes bench/results/latest.json (wrk's text in bench/results/*.txt).
# BENCH_PATHS="name=/path/ name=POST:/path/ ..." replaces the list, BENCH_AUTH=<access token>
# authenticates every request, BENCH_OUT names the JSON file (default latest.json). Exits 1 when a run saw errors
# or non-2xx answers (the figures are then not comparable), after writing the results.
set -euo pipefail

url="${1:?usage: bench/run.sh <gateway url>}"
url="${url%/}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$HERE/results"
DURATION=${BENCH_DURATION:-10s}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-64}
WARMUP=${BENCH_WARMUP:-2s}
PATHS=${BENCH_PATHS:-"version=/api/health/version/ ping=POST:/api/health/ping/ health=/api/health/"}
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

command -v wrk >/dev/null || {
    echo "run.sh: wrk not found (apt-get install wrk)" >&2
    exit 1
}
mkdir -p "$OUT"

results=()
for item in $PATHS; do
    name=${item%%=*}
    path=${item#*=}
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
        "${auth[@]}" "$url$path" || true)
    if [[ "$code" != 2?? ]]; then
        echo "run.sh: $method $url$path answers $code, not 2xx: is the suite up?" >&2
        exit 1
    fi
    echo "== $name: $method $path (warm-up $WARMUP, then $DURATION, $THREADS threads, $CONNS connections)"
    export BENCH_METHOD=$method
    # BENCH_WARMUP=0 skips the warm-up (a warm-up's requests still running on the server would
    # overlap the measured run, e.g. logins beyond the hashing bound answer 503).
    [[ $WARMUP == 0 ]] ||
        wrk -t "$THREADS" -c "$CONNS" -d "$WARMUP" -s "$HERE/report.lua" "$url$path" >/dev/null
    wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" --latency -s "$HERE/report.lua" "$url$path" \
        >"$OUT/$name.txt"
    grep -v '^ADI_RESULT' "$OUT/$name.txt"
    results+=("$name" "$method $path" "$(sed -n 's/^ADI_RESULT //p' "$OUT/$name.txt")")
done

"$PY" - "$OUT/${BENCH_OUT:-latest.json}" "$url" "$DURATION" "$THREADS" "$CONNS" "${results[@]}" <<'PY'
import datetime, json, os, platform, subprocess, sys

out, url, duration, threads, conns = sys.argv[1:6]
rest = sys.argv[6:]
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
print(f"{'run':<10} {'req/s':>10} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'errors':>7}")
for name, r in runs.items():
    l = r["latency_ms"]
    print(f"{name:<10} {r['requests_per_sec']:>10.1f} {l['p50']:>9.3f} {l['p90']:>9.3f} "
          f"{l['p99']:>9.3f} {sum(r['errors'].values()):>7}")
def ratio(a, b):
    return round(a / b, 2) if b else None
if "version" in runs:
    v = runs["version"]
    doc["ratio_to_version"] = {}
    for name, r in runs.items():
        if name == "version":
            continue
        q = {
            "requests_per_sec": ratio(r["requests_per_sec"], v["requests_per_sec"]),
            "p50": ratio(r["latency_ms"]["p50"], v["latency_ms"]["p50"]),
            "p99": ratio(r["latency_ms"]["p99"], v["latency_ms"]["p99"]),
        }
        doc["ratio_to_version"][name] = q
        print(f"{name}/version: throughput x{q['requests_per_sec']}, p50 x{q['p50']}, "
              f"p99 x{q['p99']}")
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
