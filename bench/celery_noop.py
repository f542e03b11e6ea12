# SPDX-License-Identifier: MIT
"""Celery's side of the task benchmark (bench/tasks.sh, issue 6 point 9).

As a module this is the Celery app the worker runs (`celery -A celery_noop worker`): one no-op
task, Redis as broker and result backend (CELERY_BENCH_URL, a database index of its own on the
suite's Redis), configured to do what adi-task-runner does for every task:
  task_acks_late             acknowledged after the task finished (the runner acks in the script
                             that records the outcome), not when received
  task_track_started         a STARTED state is written before the task runs (the runner's
                             STARTED state hash write)
  result backend (Redis)     the SUCCESS state is stored with a TTL of a day (the runner's
                             result TTL)
  worker_prefetch_multiplier Celery's default, 4 (a slot reserves up to 4 tasks; the runner's
                             workers read one at a time): with 1 and acks_late, Celery 5.2's
                             Redis transport waits up to 5 s before fetching again once its
                             reservations are used up (one task per 5 s on prefork -c 1; the
                             threads pool stalls), which would measure that bug, not Celery
CELERY_BENCH_ACKS_LATE, CELERY_BENCH_TRACK_STARTED (1/0) and CELERY_BENCH_PREFETCH change these.
The task returns the wall-clock time it started (time.time() as its first statement): Celery's
stored state has no start time, and this is the only thing the no-op does.

As a script it is the measurement, the same as bench/tasks_bench.c does for the runner:
  throughput  --tasks no-op tasks are sent to an empty queue, then one worker process starts
              (--pool, --concurrency) and drains it; the rate is the task count over the span
              from the first task's start to the last one's date_done (from the worker's clock)
  latency     with the worker idle, --latency-tasks are sent one at a time at --rate per second
              (open loop); enqueue-to-start is the task's start time minus the producer's wall
              clock just before send_task; enqueue-to-success uses date_done
The producer sends with an app that has no result backend (Celery's Redis backend would otherwise
subscribe to a channel per task in the producer); results are read from Redis directly.
Prints the figures and writes them as JSON to --json.
"""
import os
import time

from celery import Celery

URL = os.environ.get("CELERY_BENCH_URL", "redis://127.0.0.1:6379/15")
QUEUE = os.environ.get("CELERY_BENCH_QUEUE", "bench")

app = Celery("celery_noop", broker=URL, backend=URL)
app.conf.update(
    task_acks_late=os.environ.get("CELERY_BENCH_ACKS_LATE", "1") == "1",
    task_track_started=os.environ.get("CELERY_BENCH_TRACK_STARTED", "1") == "1",
    worker_prefetch_multiplier=int(os.environ.get("CELERY_BENCH_PREFETCH", "4")),
    task_default_queue=QUEUE,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=86400,
    worker_hijack_root_logger=False,
    broker_transport_options={"visibility_timeout": 30},
)


@app.task(name="noop")
def noop():
    return time.time()


def _main():
    import argparse
    import datetime
    import json
    import signal
    import subprocess
    import sys

    import redis

    ap = argparse.ArgumentParser(description="Celery no-op task throughput and latency")
    ap.add_argument("--pool", default="threads", help="threads, prefork or solo")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--latency-tasks", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--log", help="the worker's output (default: inherited)")
    a = ap.parse_args()
    if a.tasks < 1 or a.latency_tasks < 1 or a.rate <= 0 or a.concurrency < 1:
        ap.error("--tasks, --latency-tasks, --concurrency >= 1 and --rate > 0")

    r = redis.Redis.from_url(URL)
    # A database index of its own: nothing else lives there.
    r.flushdb()
    producer = Celery("celery_noop_producer", broker=URL)
    producer.conf.update(task_serializer="json", task_default_queue=QUEUE)
    label = f"celery {a.pool} -c {a.concurrency}"

    def send():
        return producer.send_task("noop", queue=QUEUE).id

    def wait_drained(worker):
        t0 = time.monotonic()
        while time.monotonic() - t0 < a.timeout:
            # Waiting on the queue list and in flight (acks_late: until the result is stored).
            if r.llen(QUEUE) == 0 and r.hlen("unacked") == 0:
                return True
            if worker.poll() is not None:
                sys.exit(f"celery_noop: the worker exited ({worker.returncode}) before the end")
            time.sleep(0.02)
        sys.exit(f"celery_noop: the queue was not drained within {a.timeout:.0f} s")

    def states(ids):
        # The queue can look empty a moment before the last results land (a message between
        # the list and the unacked hash): wait for every result to be SUCCESS.
        metas, t0 = {}, time.monotonic()
        while True:
            waiting = [t for t in ids if t not in metas]
            for i in range(0, len(waiting), 1000):
                chunk = waiting[i:i + 1000]
                for tid, raw in zip(chunk, r.mget([f"celery-task-meta-{t}" for t in chunk])):
                    meta = json.loads(raw) if raw is not None else {}
                    if meta.get("status") == "SUCCESS":
                        metas[tid] = meta
                    elif meta.get("status") in ("FAILURE", "REVOKED"):
                        sys.exit(f"celery_noop: task {tid} is {meta['status']}")
            if len(metas) == len(ids):
                break
            if time.monotonic() - t0 > 10:
                sys.exit(f"celery_noop: {len(ids) - len(metas)} tasks have no SUCCESS result")
            time.sleep(0.05)
        out = []
        for tid in ids:
            done = datetime.datetime.fromisoformat(metas[tid]["date_done"])
            if done.tzinfo is None:
                done = done.replace(tzinfo=datetime.timezone.utc)
            out.append((float(metas[tid]["result"]), done.timestamp()))
        return out

    def q(v, p):
        return v[min(int(p * len(v)), len(v) - 1)]

    print(f"{label}: sending {a.tasks} noop tasks", flush=True)
    t0 = time.monotonic()
    ids = [send() for _ in range(a.tasks)]
    fill_s = time.monotonic() - t0
    print(f"  sent in {fill_s:.2f} s ({a.tasks / fill_s:.0f}/s); starting the worker", flush=True)
    log = open(a.log, "ab") if a.log else None
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_noop", "worker", "--pool", a.pool,
         "-c", str(a.concurrency), "-Q", QUEUE, "-n", f"bench-{os.getpid()}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
        cwd=os.path.dirname(os.path.abspath(__file__)), stdout=log, stderr=log,
        stdin=subprocess.DEVNULL)
    try:
        wait_drained(worker)
        st = states(ids)
        span = max(d for _, d in st) - min(s for s, _ in st)
        per_sec = a.tasks / span if span > 0 else 0.0
        print(f"  throughput {per_sec:.0f} tasks/s ({a.tasks} tasks, first start to last "
              f"success {span:.3f} s)", flush=True)

        print(f"{label}: {a.latency_tasks} noop tasks at {a.rate:.0f}/s, one at a time", flush=True)
        sent = []
        t0 = time.monotonic()
        for i in range(a.latency_tasks):
            pause = t0 + i / a.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            now = time.time()
            sent.append((send(), now))
        wait_drained(worker)
        st = states([t for t, _ in sent])
        start = sorted((s - c) * 1000.0 for (s, _), (_, c) in zip(st, sent))
        done = sorted((d - c) * 1000.0 for (_, d), (_, c) in zip(st, sent))
        lat = {"tasks": a.latency_tasks, "rate_per_sec": a.rate,
               "start_p50_ms": round(q(start, 0.5), 3), "start_p99_ms": round(q(start, 0.99), 3),
               "start_mean_ms": round(sum(start) / len(start), 3),
               "done_p50_ms": round(q(done, 0.5), 3), "done_p99_ms": round(q(done, 0.99), 3)}
        print(f"  enqueue-to-start p50 {lat['start_p50_ms']:.2f} ms  p99 {lat['start_p99_ms']:.2f} "
              f"ms  mean {lat['start_mean_ms']:.2f} ms; enqueue-to-success p50 "
              f"{lat['done_p50_ms']:.2f} ms  p99 {lat['done_p99_ms']:.2f} ms", flush=True)
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)  # warm shutdown
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        if log:
            log.close()
        r.flushdb()
    doc = {"pool": a.pool, "concurrency": a.concurrency, "tasks": a.tasks,
           "acks_late": app.conf.task_acks_late, "track_started": app.conf.task_track_started,
           "prefetch_multiplier": app.conf.worker_prefetch_multiplier,
           "enqueue_per_sec": round(a.tasks / fill_s, 1), "per_sec": round(per_sec, 1),
           "span_s": round(span, 3), "latency": lat}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=2)


if __name__ == "__main__":
    _main()
