#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/tasks.sh: the background-task figures of issue 6, against a running suite whose env
# (REDIS_URL, ADI_BIN_DIR, ADI_PG_PORT, ADI_LOG_DIR) comes from tests/harness/with-env.sh, as
# bench/vault.sh:
#   adi-task-runner  one replica of its own (serving only the queue "bench", TASK_WORKERS (4)
#                    worker threads, scheduler off, LOG_LEVEL its default info) started by
#                    adi-tasks-bench (bench/tasks_bench.c; TASKS_BENCH_BIN, default the release
#                    build's build/release/bench/adi-tasks-bench) after the queue is filled
#   celery           when Debian's python3-celery and python3-redis are installed: one Celery 5
#                    worker process per entry of BENCH_CELERY_POOLS ("threads:<TASK_WORKERS>
#                    prefork:1" = --pool threads -c 4 and --pool prefork -c 1), broker and results
#                    on the same Redis server, database index CELERY_BENCH_DB (15); see
#                    bench/celery_noop.py
# Both measure the same way: BENCH_TASKS (20000; Celery: BENCH_CELERY_TASKS, 5000, as it is
# slower) no-op tasks queued before the worker starts, the rate over first start to last success;
# then BENCH_LATENCY_TASKS (1000) sent one at a time at BENCH_TASK_RATE (50) per second to the
# idle worker (well below either's capacity, so no queueing), enqueue-to-start p50/p99 from the
# producer's clock just before the enqueue call to the task's start (same host, same clock).
# Writes bench/results/tasks.json; exits 1 when a run failed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$HERE/results"
PY=/usr/bin/python3
TASKS=${BENCH_TASKS:-20000}
CELERY_TASKS=${BENCH_CELERY_TASKS:-5000}
LAT_TASKS=${BENCH_LATENCY_TASKS:-1000}
RATE=${BENCH_TASK_RATE:-50}
WORKERS=${TASK_WORKERS:-4}
POOLS=${BENCH_CELERY_POOLS:-threads:$WORKERS prefork:1}
CELERY_DB=${CELERY_BENCH_DB:-15}
TOOL=${TASKS_BENCH_BIN:-$HERE/../build/release/bench/adi-tasks-bench}
LOGDIR=${ADI_LOG_DIR:-$OUT}
[[ -x $TOOL ]] || { echo "tasks.sh: $TOOL not built (cmake --build --preset release)" >&2; exit 1; }
: "${REDIS_URL:?tasks.sh: REDIS_URL not set (run it through tests/harness/with-env.sh)}"
: "${ADI_BIN_DIR:?tasks.sh: ADI_BIN_DIR not set}"
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0

echo "== background tasks: no-op throughput of one worker and enqueue-to-start latency"
echo "   ($TASKS queued tasks, Celery $CELERY_TASKS; then $LAT_TASKS at ${RATE}/s;" \
    "$(nproc) CPUs shared with the suite)"
# The replica: the suite's settings and its own database role, nothing but the bench queue.
env TASK_QUEUES=bench TASK_WORKERS="$WORKERS" SCHEDULER_ENABLED=0 OPS_HOST=127.0.0.1 OPS_PORT=0 \
    CONSUMER_NAME="bench-tasks-$$" \
    DATABASE_URL="postgresql://adi_task_runner@127.0.0.1:${ADI_PG_PORT:-5432}/adinsights" \
    "$TOOL" --queue bench --tasks "$TASKS" --latency-tasks "$LAT_TASKS" --rate "$RATE" \
    --json "$work/adi.json" --log "$LOGDIR/adi-task-runner-bench.log" \
    -- "$ADI_BIN_DIR/adi-task-runner" || status=1

celery_runs=()
if "$PY" -c 'import celery, redis' 2>/dev/null; then
    celery_url=$("$PY" -c 'import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1]); print(u.urlunsplit((p.scheme, p.netloc, "/" + sys.argv[2], "", "")))' \
        "$REDIS_URL" "$CELERY_DB")
    for spec in $POOLS; do
        pool=${spec%%:*}
        conc=${spec#*:}
        [[ $conc == "$spec" ]] && conc=$WORKERS
        CELERY_BENCH_URL=$celery_url "$PY" "$HERE/celery_noop.py" --pool "$pool" \
            --concurrency "$conc" --tasks "$CELERY_TASKS" --latency-tasks "$LAT_TASKS" --rate "$RATE" \
            --json "$work/celery-$pool-$conc.json" --log "$LOGDIR/celery-bench.log" || status=1
        [[ -f "$work/celery-$pool-$conc.json" ]] && celery_runs+=("$work/celery-$pool-$conc.json")
    done
else
    echo "tasks.sh: python3-celery / python3-redis not installed: Celery not measured"
fi

version=$("$PY" -c 'import celery; print(celery.__version__)' 2>/dev/null || true)
"$PY" - "$OUT" "$work/adi.json" "$WORKERS" "$version" "${celery_runs[@]}" <<'PY' || status=1
import datetime, json, os, sys
out, adi_file, workers, celery_version, runs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
if not os.path.exists(adi_file):
    sys.exit("tasks.sh: no figures from adi-tasks-bench")
adi = json.load(open(adi_file))
celery = [json.load(open(f)) for f in runs]
rows = [(f"adi-task-runner ({workers} threads)", adi)] + \
       [(f"celery --pool {c['pool']} -c {c['concurrency']}", c) for c in celery]
print(f"\n{'one worker':34} {'tasks/s':>9} {'enqueue-to-start p50':>21} {'p99':>9}")
for name, d in rows:
    l = d["latency"]
    print(f"{name:34} {d['per_sec']:9.0f} {l['start_p50_ms']:18.2f} ms {l['start_p99_ms']:6.2f} ms")
print("tasks/s: queued no-op tasks, first start to last success; enqueue-to-start: the producer's "
      "clock just before the enqueue call to the task's start (adi: the STARTED write's "
      "started_at_us; celery: the task's first statement), at a steady rate to an idle worker")
doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
       "machine": {"cpus": os.cpu_count()},
       "method": {"throughput": "tasks queued before the worker starts; count / (last success - first start)",
                  "latency": "tasks sent one at a time at a fixed rate to an idle worker; "
                             "enqueue-to-start and enqueue-to-success percentiles"},
       "adi_task_runner": dict(adi, task_workers=int(workers)),
       "celery": {"version": celery_version, "runs": celery}}
json.dump(doc, open(os.path.join(out, "tasks.json"), "w"), indent=2)
print(f"written {os.path.join(out, 'tasks.json')}")
PY
exit $status
