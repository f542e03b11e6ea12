# SPDX-License-Identifier: MIT
"""Faults under load (issue 8, item 1): a bounded mixed read/write load on the gateway while parts
of the suite fail, then the database compared with the log of 2xx answers.

Runs against a suite started by tests/harness/suite.sh (env from with-env.sh: GATEWAY_URL,
REDIS_URL, DATABASE_URL, ADI_PIDS_DIR, ADI_LOG_DIR, ADI_TEST_DIR, ADI_PG_BIN, ...), through
tests/faults/run.sh, which also owns the private stack. On top of the suite's one process per
binary it starts a second replica of every service and a second gateway on the same HTTP port
(the gateway binds its listeners with SO_REUSEPORT), each from the /proc environ of the suite's
own process, so the replicas get exactly the suite's settings (keys, URLs, timeouts).

Scenarios (each: load, a fault after a warm-up, load on):
  kill9-<svc>    SIGKILL one replica of each service in turn (a fresh replica replaces it after)
  redis-restart  Redis SIGKILLed and started again on its port; AOF with appendfsync always is
                 switched on (CONFIG SET) before, so every write Redis acknowledged survives
  pg-restart     PostgreSQL fast shutdown (SIGINT) and start; fast, not immediate: the test
                 cluster runs synchronous_commit=off, so only a clean shutdown keeps every commit
  gateway-kill   SIGKILL one gateway replica; the other keeps serving; the dead one's reply
                 streams gw:{<instance>-<n>}:rep must carry a TTL (they expire; nothing leaks)
  sigterm-all    SIGTERM every service replica; each must exit (exit time vs SHUTDOWN_GRACE_MS
                 reported), then all are started again

Client model: every write carries an Idempotency-Key and a unique marker; a 5xx, a 409 "in
progress" or a connection error is retried with the same key (bounded attempts). After each
scenario: lost = 2xx writes not in the database (or 2xx deletes still there); duplicated = a
marker in more than one row, an audit entry recorded twice, or a retry answered as a fresh request
would be (4xx conflict / not found for a key whose first attempt was applied). The audit log
(tenant.audit_log, fed by ev:audit through the services' transactional outbox) is checked too:
audit_lost counts 2xx credential writes without their entry (an event left in the outbox by a
kill or a Redis outage is published by the sweep within ~15 s, so the wait covers it). Recovery time: the first 1 s window after the fault whose
2xx count reaches 80 % of the pre-fault rate (printed, never asserted).

Exit status 0 when lost == 0, duplicated == 0 and audit_lost == 0 in every scenario and every process that was not
a fault's target kept its pid; the table goes to stdout and everything to the JSON file --out.
"""
import argparse
import http.client
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from gw_e2e import Redis, RedisError, wait_for  # noqa: E402  (the e2e tests' RESP client)

SERVICES = ["auth", "tenant", "vault", "task-runner"]
PASSWORD = "faults-pass-1234"
MAX_ATTEMPTS = 40
RETRY_BUDGET_S = 15.0
RUN_TAG = uuid.uuid4().hex[:8]


def env(name):
    v = os.environ.get(name)
    if not v:
        sys.exit(f"faults.py: {name} is not set (run through tests/faults/run.sh)")
    return v


def log(msg):
    print(f"faults: {msg}", file=sys.stderr, flush=True)


# ---- processes -------------------------------------------------------------------------------


def gone(pid):
    """True when pid has exited (a zombie counts: its parent may never reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def wait_gone(pid, timeout):
    """Seconds until pid exited, or None after timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if gone(pid):
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


class Proc:
    """One process of the suite: a suite original (pid file in ADI_PIDS_DIR) or a replica."""

    def __init__(self, binary, pid, exe, environ, popen=None, pidfile=None, label=None):
        self.binary = binary  # adi-auth, ..., adi-gateway
        self.pid = pid
        self.exe = exe
        self.environ = environ
        self.popen = popen  # set when this driver started it (so it can be reaped)
        self.pidfile = pidfile
        self.label = label or f"{binary}[{pid}]"

    def alive(self):
        return not gone(self.pid)

    def reap(self):
        if self.popen is not None:
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


class Suite:
    def __init__(self):
        self.pids_dir = env("ADI_PIDS_DIR")
        self.log_dir = env("ADI_LOG_DIR")
        self.test_dir = env("ADI_TEST_DIR")
        self.my_pids = os.path.join(self.test_dir, "faults-pids")
        os.makedirs(self.my_pids, exist_ok=True)
        self.gen = 0
        self.procs = []  # live processes
        self.dead_gateways = []  # (instance, time of the kill)
        for b in [f"adi-{s}" for s in SERVICES] + ["adi-gateway"]:
            pf = os.path.join(self.pids_dir, f"{b}.pid")
            pid = int(open(pf).read().split()[0])
            self.procs.append(Proc(b, pid, os.readlink(f"/proc/{pid}/exe"), self.environ_of(pid),
                                   pidfile=pf, label=f"{b}#1"))

    @staticmethod
    def environ_of(pid):
        raw = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        return dict(kv.decode().split("=", 1) for kv in raw if b"=" in kv)

    def of(self, binary):
        return [p for p in self.procs if p.binary == binary]

    def start(self, template, original=False):
        """Starts a process like `template` (same binary and environment); returns its Proc."""
        self.gen += 1
        e = dict(template.environ)
        label = f"{template.binary}#{self.gen + 1}"
        if not original:
            e["OPS_PORT"] = str(free_port())
            if template.binary == "adi-gateway":
                e["GATEWAY_INSTANCE"] = f"faults-{RUN_TAG}-gw{self.gen}"
            else:
                e["CONSUMER_NAME"] = f"faults-{RUN_TAG}-{template.binary[4:]}{self.gen}"
        name = template.binary if original else f"{template.binary}.{self.gen}"
        out = open(os.path.join(self.log_dir, f"{name}.log"), "ab")
        popen = subprocess.Popen([template.exe], env=e, stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        if original:
            pf = template.pidfile
        else:
            pf = os.path.join(self.my_pids, f"{template.binary}@{self.gen}.pid")
        with open(pf, "w") as f:
            f.write(f"{popen.pid}\n")
        p = Proc(template.binary, popen.pid, template.exe, e, popen=popen, pidfile=pf, label=label)
        self.procs.append(p)
        return p

    def forget(self, p):
        self.procs.remove(p)
        if p.pidfile and p.pidfile.startswith(self.my_pids):
            try:
                os.unlink(p.pidfile)
            except FileNotFoundError:
                pass

    def wait_ready(self, p, r):
        """Waits until a new service replica answers /readyz on its ops port, or a new gateway's
        threads all see every service's stream."""
        if p.binary == "adi-gateway":
            # As suite.sh: every thread sees every service's stream (its ops /metrics).
            want = int(p.environ.get("GATEWAY_THREADS", "2")) * len(SERVICES)

            def up():
                if not p.alive():
                    raise AssertionError(f"{p.label} died while starting")
                text = ops_get(p, "/metrics")[1]
                return sum(1 for line in text.splitlines()
                           if line.startswith("adi_gateway_backend_stream_up{")
                           and line.endswith(" 1")) >= want
            wait_for(up, f"{p.label} to see every service", timeout=60)
            return

        def ready():
            if not p.alive():
                raise AssertionError(f"{p.label} died while starting")
            return ops_get(p, "/readyz")[0] == 200
        wait_for(ready, f"{p.label} to be ready (/readyz)", timeout=60)


def ops_get(p, path):
    """GET path on the ops port of process p: (status, text), (0, "") when nothing answers."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", int(p.environ["OPS_PORT"]), timeout=2)
        c.request("GET", path)
        resp = c.getresponse()
        out = resp.status, resp.read().decode()
        c.close()
        return out
    except (OSError, http.client.HTTPException):
        return 0, ""


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- HTTP ------------------------------------------------------------------------------------

GW = urllib.parse.urlsplit(os.environ.get("GATEWAY_URL", "http://127.0.0.1:1"))


def http_once(method, path, body, headers, conn=None, timeout=15):
    c = conn or http.client.HTTPConnection(GW.hostname, GW.port, timeout=timeout)
    data = json.dumps(body) if body is not None else None
    h = dict(headers)
    if data is not None:
        h["Content-Type"] = "application/json"
    try:
        c.request(method, path, body=data, headers=h)
        resp = c.getresponse()
        raw = resp.read()
        try:
            js = json.loads(raw) if raw else None
        except ValueError:
            js = None
        return resp.status, js
    finally:
        if conn is None:
            c.close()


class Recorder:
    """Every attempt's completion (time, status) and every logical request's outcome."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempts = []  # (t_start, t_end, status) ; status 0 = connection error
        self.requests = []  # dicts, see Client.call

    def attempt(self, t0, t1, status):
        with self.lock:
            self.attempts.append((t0, t1, status))

    def request(self, rec):
        with self.lock:
            self.requests.append(rec)


class Client:
    """One load thread's HTTP client: a keep-alive connection, renewed every 20 requests so that
    the kernel spreads connections over both gateways' listeners."""

    def __init__(self, rec, scenario_ref):
        self.rec = rec
        self.scenario = scenario_ref  # list of one: the current scenario name
        self.conn = None
        self.uses = 0
        self.token = None

    def _conn(self):
        if self.conn is None or self.uses >= 20:
            if self.conn is not None:
                self.conn.close()
            self.conn = http.client.HTTPConnection(GW.hostname, GW.port, timeout=15)
            self.uses = 0
        self.uses += 1
        return self.conn

    def call(self, op, method, path, body=None, write=False, marker=None, stop=None):
        """One logical request; writes carry an Idempotency-Key and are retried with it."""
        key = str(uuid.uuid4()) if write else None
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if key:
            headers["Idempotency-Key"] = key
        statuses = []
        js = None
        t_first = time.monotonic()
        busy = False
        for attempt in range(MAX_ATTEMPTS):
            t0 = time.monotonic()
            try:
                status, js = http_once(method, path, body, headers, conn=self._conn())
            except (OSError, http.client.HTTPException):
                status, js = 0, None
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
            self.rec.attempt(t0, time.monotonic(), status)
            statuses.append(status)
            busy = status == 409 and write and _in_progress(js)
            retry = status == 0 or status >= 500 or busy
            # Reads: 3 attempts. Writes: until RETRY_BUDGET_S is spent, which outlasts the
            # gateway's Idempotency-Key lock of a request whose gateway died (its deadline + 5 s).
            if not retry or (not write and attempt >= 2) or \
                    time.monotonic() - t_first > RETRY_BUDGET_S:
                break
            time.sleep(min(0.05 * (2 ** attempt), 1.0))
        rec = {"scenario": self.scenario[0], "op": op, "method": method, "path": path,
               "key": key, "marker": marker, "statuses": statuses, "status": statuses[-1],
               "busy": busy,
               "t0": t_first, "t1": time.monotonic()}
        self.rec.request(rec)
        return statuses[-1], js


def _in_progress(js):
    d = (js or {}).get("detail", "") if isinstance(js, dict) else ""
    return "progress" in d.lower() or "processed" in d.lower()


# ---- the workload ----------------------------------------------------------------------------


class Worker(threading.Thread):
    """A load thread with its own tenant (its admin signs up and logs in once)."""

    def __init__(self, idx, rec, scenario_ref, stop):
        super().__init__(daemon=True)
        self.idx = idx
        self.c = Client(rec, scenario_ref)
        self.stop = stop
        self.go = threading.Event()
        self.rnd = random.Random(idx)
        self.creds = []  # credential ids this worker created (2xx)
        self.users = []  # user ids this worker created (2xx)
        self.tenant = None
        self.n = 0

    def marker(self):
        self.n += 1
        return f"f{RUN_TAG}t{self.idx}n{self.n}"

    def setup(self):
        m = self.marker()
        email = f"{m}@faults.test"
        for _ in range(10):
            st, js = self.c.call("signup", "POST", "/api/tenants/",
                                 {"name": m, "admin_email": email, "admin_password": PASSWORD},
                                 write=True, marker=m)
            if st == 201:
                break
        else:
            raise RuntimeError(f"signup failed: {st} {js}")
        self.tenant = js["id"]
        st, js = self.c.call("login", "POST", "/api/auth/login/",
                             {"username": email, "password": PASSWORD})
        if st != 200:
            raise RuntimeError(f"login failed: {st} {js}")
        self.c.token = js["access"]
        self.email = email

    def step(self):
        c, r = self.c, self.rnd.random()
        if r < 0.45:
            path = self.rnd.choice(["/api/me/", "/api/users/", "/api/user-roles/",
                                    "/api/platform-credentials/", "/api/tenants/",
                                    "/api/audit-logs/?resource_type=credential"])
            c.call("read", "GET", path)
        elif r < 0.63:
            m = self.marker()
            st, js = c.call("cred_create", "POST", "/api/platform-credentials/",
                            {"provider": "META", "account_id": m, "access_token": "tok-" + m},
                            write=True, marker=m, stop=self.stop)
            if st == 201:
                self.creds.append((js["id"], m))
        elif r < 0.70 and self.creds:
            cid, m = self.creds.pop(self.rnd.randrange(len(self.creds)))
            st, _ = c.call("cred_delete", "DELETE", f"/api/platform-credentials/{cid}/",
                           write=True, marker=m, stop=self.stop)
            if st >= 300:
                self.creds.append((cid, m))
        elif r < 0.75 and self.creds:
            cid, m = self.rnd.choice(self.creds)
            c.call("cred_patch", "PATCH", f"/api/platform-credentials/{cid}/",
                   {"access_token": "tok2-" + m}, write=True, marker=m, stop=self.stop)
        elif r < 0.84:
            m = self.marker()
            st, js = c.call("user_create", "POST", "/api/users/",
                            {"email": f"{m}@faults.test", "password": PASSWORD},
                            write=True, marker=m, stop=self.stop)
            if st == 201:
                self.users.append(js["id"])
        elif r < 0.92:
            m = self.marker()
            c.call("invite", "POST", f"/api/tenants/{self.tenant}/invite/",
                   {"email": f"{m}@faults.test", "role": "VIEWER"}, write=True, marker=m,
                   stop=self.stop)
        elif r < 0.96 and self.users:
            u = self.rnd.choice(self.users)
            c.call("role_assign", "POST", "/api/roles/assign/", {"user": u, "role": "ANALYST"},
                   write=True, marker=u, stop=self.stop)
        elif r < 0.98:
            c.call("login", "POST", "/api/auth/login/",
                   {"username": self.email, "password": PASSWORD})
        else:
            m = self.marker()
            c.call("signup", "POST", "/api/tenants/",
                   {"name": m, "admin_email": f"{m}@faults.test", "admin_password": PASSWORD},
                   write=True, marker=m, stop=self.stop)

    def run(self):
        while not self.stop.is_set():
            self.go.wait(0.2)
            if self.go.is_set():
                self.step()


# ---- database checks -------------------------------------------------------------------------


def psql(sql):
    pgbin = os.environ.get("ADI_PG_BIN", "/usr/lib/postgresql/15/bin")
    out = subprocess.run([os.path.join(pgbin, "psql"), "-X", "-q", "-At", "-F", "\t", "-d",
                          env("DATABASE_URL"), "-v", "ON_ERROR_STOP=1", "-c", sql],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def lit(values):
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def counts(sql_fmt, values):
    if not values:
        return {}
    return {k: int(n) for k, n in psql(sql_fmt % lit(sorted(set(values))))}


def check(reqs, audit_wait):
    """Compares the database with the 2xx log of `reqs`; returns a dict of counts and samples."""
    ok = lambda op: [q for q in reqs if q["op"] == op and 200 <= q["status"] < 300]  # noqa: E731
    res = {"lost": 0, "duplicated": 0, "audit_lost": 0, "samples": []}

    def bad(kind, what, q=None):
        res[kind] += 1
        if len(res["samples"]) < 20:
            res["samples"].append({"kind": kind, "what": what,
                                   "statuses": q["statuses"] if q else None})

    deleted = {q["marker"] for q in ok("cred_delete")}
    created = [q["marker"] for q in ok("cred_create")]
    rows = counts("SELECT account_id, count(*) FROM vault.platform_credentials "
                  "WHERE account_id = ANY(%s) GROUP BY 1", created + list(deleted))
    for m in created:
        if m not in deleted and rows.get(m, 0) == 0:
            bad("lost", f"credential {m} answered 201 is not in vault.platform_credentials")
    for m in deleted:
        if rows.get(m, 0) > 0:
            bad("lost", f"credential {m} answered 204 to DELETE is still there")
    for op, sql in [
        ("user_create", "SELECT split_part(lower(email), '@', 1), count(*) FROM auth.users "
                        "WHERE split_part(lower(email), '@', 1) = ANY(%s) GROUP BY 1"),
        ("invite", "SELECT split_part(email, '@', 1), count(*) FROM tenant.invitations "
                   "WHERE split_part(email, '@', 1) = ANY(%s) GROUP BY 1"),
        ("signup", "SELECT name, count(*) FROM tenant.tenants WHERE name = ANY(%s) GROUP BY 1"),
        ("role_assign", "SELECT user_id::text, count(*) FROM auth.user_roles "
                        "WHERE role = 'ANALYST' AND user_id::text = ANY(%s) GROUP BY 1"),
    ]:
        got = counts(sql, [q["marker"] for q in ok(op)])
        for q in ok(op):
            if got.get(q["marker"], 0) == 0:
                bad("lost", f"{op} {q['marker']} answered {q['status']} is not in the database", q)
        for m, n in got.items():
            if n > 1:
                bad("duplicated", f"{op} {m}: {n} rows")
    # Any write whose marker is in two rows (a write that failed for the client may still have
    # been applied once, never twice).
    every = lambda op: [q["marker"] for q in reqs if q["op"] == op]  # noqa: E731
    for m, n in counts("SELECT name, count(*) FROM tenant.tenants WHERE name = ANY(%s) "
                       "GROUP BY 1 HAVING count(*) > 1", every("signup")).items():
        bad("duplicated", f"tenant {m}: {n} rows")
    for m, n in counts("SELECT split_part(email, '@', 1), count(*) FROM tenant.invitations "
                       "WHERE split_part(email, '@', 1) = ANY(%s) GROUP BY 1 HAVING count(*) > 1",
                       every("invite")).items():
        bad("duplicated", f"invitation {m}: {n} rows")
    # A retried write answered as if it were new: its first attempt was applied and the retry was
    # not recognised (a conflict on the unique marker, or a 404 for the row it deleted itself).
    for q in reqs:
        if q["key"] and len(q["statuses"]) > 1 and q["status"] in (400, 404, 409) and \
                not q["busy"]:
            bad("duplicated", f"{q['op']} {q['marker']}: retry answered {q['status']}", q)
    # The audit log: one credential_created / credential_deleted entry per 2xx answer. The
    # tenant service consumes ev:audit asynchronously: wait until the counts settle.
    want = {("credential_created", m) for m in created} | {("credential_deleted", m)
                                                           for m in deleted}
    markers = sorted({m for _, m in want})
    deadline = time.monotonic() + audit_wait
    got = {}
    while True:
        got = {}
        if markers:
            for action, m, n in psql(
                    "SELECT action, metadata->>'account_id', count(*) FROM tenant.audit_log "
                    "WHERE action IN ('credential_created', 'credential_deleted') AND "
                    f"metadata->>'account_id' = ANY({lit(markers)}) GROUP BY 1, 2"):
                got[(action, m)] = int(n)
        if all(got.get(k, 0) > 0 for k in want) or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    for k in sorted(want):
        if got.get(k, 0) == 0:
            bad("audit_lost", f"no {k[0]} audit entry for {k[1]}")
    for k, n in got.items():
        if n > 1:
            bad("duplicated", f"{n} {k[0]} audit entries for {k[1]}")
    return res


# ---- scenarios -------------------------------------------------------------------------------


def redis_conn():
    return Redis(url=env("REDIS_URL"))


def aof_on():
    with redis_conn() as r:
        r.command("CONFIG", "SET", "appendonly", "yes")
        r.command("CONFIG", "SET", "appendfsync", "always")

        def done():
            info = r.command("INFO", "persistence").decode()
            kv = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
            return (kv.get("aof_enabled") == "1" and kv.get("aof_rewrite_in_progress") == "0"
                    and kv.get("aof_rewrite_scheduled") == "0")
        wait_for(done, "the AOF rewrite", timeout=60)


def restart_redis():
    d = env("ADI_TEST_DIR")
    port = env("ADI_REDIS_PORT")
    pid = int(open(os.path.join(d, "redis.pid")).read().split()[0])
    os.kill(pid, signal.SIGKILL)
    if wait_gone(pid, 30) is None:
        raise AssertionError("redis-server did not die")
    # stack.sh's command line, with the AOF on (appendfsync always: no acknowledged write lost).
    out = open(os.path.join(d, "logs", "redis-server.log"), "ab")
    for _ in range(50):  # the port may linger for a moment after the kill
        p = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", port, "--save", "",
                              "--appendonly", "yes", "--appendfsync", "always", "--daemonize",
                              "no", "--dir", os.path.join(d, "redis"), "--protected-mode", "yes"],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            p.wait(timeout=0.3)
            time.sleep(0.1)  # it exited (port still taken): try again
        except subprocess.TimeoutExpired:
            break
    out.close()
    with open(os.path.join(d, "redis.pid"), "w") as f:
        f.write(f"{p.pid}\n")

    def pong():
        try:
            with redis_conn() as r:
                return r.command("PING") == "PONG"
        except (OSError, RedisError):
            return False
    wait_for(pong, "redis-server to answer after the restart", timeout=60)
    return p


def restart_pg():
    pgdata = open(os.path.join(env("ADI_TEST_DIR"), "pgdata")).read().strip()
    pid = int(open(os.path.join(pgdata, "postmaster.pid")).readline())
    argv = shlex.split(open(os.path.join(pgdata, "postmaster.opts")).read())
    st = os.stat(pgdata)
    os.kill(pid, signal.SIGINT)  # fast shutdown: sessions end, every commit is on disk
    if wait_gone(pid, 60) is None:
        raise AssertionError("postgres did not stop")
    out = open(os.path.join(env("ADI_TEST_DIR"), "logs", "postgres.log"), "ab")
    kw = {}
    if os.getuid() == 0:
        kw = {"user": st.st_uid, "group": st.st_gid, "extra_groups": []}
    p = subprocess.Popen(argv, cwd="/", stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.STDOUT, start_new_session=True,
                         env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}, **kw)
    out.close()
    pgbin = os.environ.get("ADI_PG_BIN", os.path.dirname(argv[0]))

    def ready():
        return subprocess.run([os.path.join(pgbin, "pg_isready"), "-q", "-h", "127.0.0.1", "-p",
                               env("ADI_PG_PORT"), "-U", "postgres", "-t", "1"]).returncode == 0
    wait_for(ready, "postgres to accept connections after the restart", timeout=60)
    return p


class Runner:
    def __init__(self, args):
        self.args = args
        self.suite = Suite()
        self.rec = Recorder()
        self.scenario = ["setup"]
        self.stop = threading.Event()
        self.workers = [Worker(i, self.rec, self.scenario, self.stop)
                        for i in range(args.concurrency)]
        self.results = []
        self.failures = []
        self.keep = []  # Popen objects of restarted redis/postgres (kept referenced)

    def add_replicas(self):
        with redis_conn() as r:
            for b in [f"adi-{s}" for s in SERVICES] + ["adi-gateway"]:
                p = self.suite.start(self.suite.of(b)[0])
                self.suite.wait_ready(p, r)

    def replace(self, binary):
        """Starts a replica of `binary` to replace one that a fault took away."""
        with redis_conn() as r:
            p = self.suite.start(self.suite.of(binary)[0] if self.suite.of(binary)
                                 else self.templates[binary])
            self.suite.wait_ready(p, r)

    def run_scenario(self, name, fault, restore=None):
        args = self.args
        self.scenario[0] = name
        before = {p.pid: p for p in self.suite.procs}
        n0 = len(self.rec.requests)
        a0 = len(self.rec.attempts)
        for w in self.workers:
            w.go.set()
        time.sleep(args.warmup)  # the load runs: the warm-up is load time, not synchronisation
        t_fault = time.monotonic()
        info = fault() or {}
        t_after = time.monotonic()
        remaining = args.duration - args.warmup - (t_after - t_fault)
        if remaining > 0:
            time.sleep(remaining)
        for w in self.workers:
            w.go.clear()
        # Let in-flight requests (and their retries) finish before counting.
        self._drain()
        reqs = self.rec.requests[n0:]
        attempts = self.rec.attempts[a0:]
        targets = set(info.get("targets", []))
        changed = [before[pid].label for pid in before
                   if pid not in targets and (not before[pid].alive())]
        if changed:
            self.failures.append(f"{name}: processes died that were not a fault's target: "
                                 f"{changed}")
        if restore:
            restore()
        res = check(reqs, args.audit_wait)
        row = self.summarise(name, reqs, attempts, t_fault, info, res)
        row["survivors_same_pid"] = not changed
        self.results.append(row)
        log(f"{name}: {json.dumps({k: row[k] for k in TABLE_KEYS})}")
        if row["lost"] or row["duplicated"] or row["audit_lost"]:
            self.failures.append(f"{name}: lost {row['lost']}, duplicated {row['duplicated']}, "
                                 f"audit_lost {row['audit_lost']}: {res['samples'][:5]}")

    def _drain(self):
        """Waits until no worker is inside a request (each finishes its current one)."""
        def idle():
            with self.rec.lock:
                n = len(self.rec.requests)
            time.sleep(0.3)
            with self.rec.lock:
                return len(self.rec.requests) == n
        wait_for(idle, "in-flight requests to finish", timeout=120)

    def summarise(self, name, reqs, attempts, t_fault, info, res):
        twoxx = [a for a in attempts if 200 <= a[2] < 300]
        pre_w = min(3.0, max(0.5, self.args.warmup - 0.5))
        pre = sum(1 for a in twoxx if t_fault - pre_w <= a[1] < t_fault) / pre_w
        recovery = None
        s = t_fault
        t_end = max((a[1] for a in attempts), default=t_fault)
        while s + 1.0 <= t_end:
            n = sum(1 for a in twoxx if s <= a[1] < s + 1.0)
            if pre > 0 and n >= 0.8 * pre:
                recovery = round(s - t_fault, 1)
                break
            s += 0.1
        inflight = {}
        for a in attempts:
            if a[0] < t_fault <= a[1]:
                k = str(a[2]) if a[2] else "conn_error"
                inflight[k] = inflight.get(k, 0) + 1
        return {
            "scenario": name,
            "requests": len(reqs),
            "attempts": len(attempts),
            "2xx": sum(1 for q in reqs if 200 <= q["status"] < 300),
            "5xx": sum(1 for a in attempts if a[2] >= 500),
            "conn_errors": sum(1 for a in attempts if a[2] == 0),
            "failed_after_retries": sum(1 for q in reqs if q["status"] == 0 or q["status"] >= 500
                                        or q["busy"]),
            "lost": res["lost"],
            "duplicated": res["duplicated"],
            "audit_lost": res["audit_lost"],
            "pre_fault_rps": round(pre, 1),
            "recovery_s": recovery,
            "inflight_at_fault": inflight,
            "samples": res["samples"],
            **{k: v for k, v in info.items() if k != "targets"},
        }

    # -- the faults --

    def kill9(self, svc):
        def fault():
            victim = [p for p in self.suite.of(f"adi-{svc}") if p.popen is not None][0]
            os.kill(victim.pid, signal.SIGKILL)
            wait_gone(victim.pid, 10)
            victim.reap()
            self.suite.forget(victim)
            return {"targets": [victim.pid], "killed": victim.label}
        return fault

    def fault_redis(self):
        self.keep.append(restart_redis())
        return {"aof": "appendonly yes, appendfsync always"}

    def fault_pg(self):
        self.keep.append(restart_pg())
        return {}

    def fault_gateway(self):
        victim = [p for p in self.suite.of("adi-gateway") if p.popen is not None][0]
        os.kill(victim.pid, signal.SIGKILL)
        wait_gone(victim.pid, 10)
        victim.reap()
        self.suite.forget(victim)
        inst = victim.environ["GATEWAY_INSTANCE"]
        self.suite.dead_gateways.append((inst, time.monotonic()))
        return {"targets": [victim.pid], "killed": victim.label, "dead_instance": inst}

    def fault_sigterm(self):
        victims = [p for p in self.suite.procs if p.binary != "adi-gateway"]
        for p in victims:
            os.kill(p.pid, signal.SIGTERM)
        t_term = time.monotonic()
        exits = {}
        for p in victims:
            grace = int(p.environ.get("SHUTDOWN_GRACE_MS", "25000")) / 1000
            t = wait_gone(p.pid, grace + 30)
            if t is not None:  # seconds since the SIGTERM (the waits run one after another)
                t = time.monotonic() - t_term
            if t is None:
                os.kill(p.pid, signal.SIGKILL)
                self.failures.append(f"sigterm-all: {p.label} did not exit after SIGTERM")
            rc = None
            if p.popen is not None:
                p.popen.wait(timeout=10)
                rc = p.popen.returncode
                if rc != 0:
                    self.failures.append(f"sigterm-all: {p.label} exited with status {rc}")
            exits[p.label] = {"exit_s": round(t, 2) if t is not None else None,
                              "grace_s": grace, "status": rc,
                              "within_grace": t is not None and t <= grace}
        # Every service again: originals under the suite's pid files, and the second replicas.
        with redis_conn() as r:
            for p in victims:
                self.suite.forget(p)
                q = self.suite.start(p, original=p.pidfile.startswith(self.suite.pids_dir + "/"))
                self.suite.wait_ready(q, r)
        return {"targets": [p.pid for p in victims], "exits": exits}

    def check_reply_streams(self, final):
        """The dead gateways' reply streams carry a TTL (or are gone already)."""
        out = []
        with redis_conn() as r:
            for inst, t_kill in self.suite.dead_gateways:
                for i in range(8):
                    k = f"gw:{{{inst}-{i}}}:rep"
                    ttl = r.command("PTTL", k)
                    if ttl == -2:
                        continue
                    out.append({"key": k, "pttl_ms": ttl,
                                "since_kill_s": round(time.monotonic() - t_kill, 1)})
                    if ttl == -1:
                        self.failures.append(f"{k} of a dead gateway has no TTL: it never goes")
            # Every gateway reply stream in Redis must belong to a live gateway or expire.
            live = {p.environ.get("GATEWAY_INSTANCE") for p in self.suite.of("adi-gateway")}
            cursor = b"0"
            stale = []
            while True:
                cursor, keys = r.command("SCAN", cursor, "MATCH", "gw:{*}:rep", "COUNT", 1000)
                for k in keys:
                    if r.command("PTTL", k) == -1:
                        stale.append(k.decode())
                if cursor == b"0":
                    break
            del live
            if stale:
                self.failures.append(f"reply streams without a TTL: {stale}")
            # Service-to-service reply streams of replicas that no longer run (reported only).
            orphans = []
            consumers = {(p.environ.get("CONSUMER_NAME") or "") for p in self.suite.procs}
            cursor = b"0"
            while True:
                cursor, keys = r.command("SCAN", cursor, "MATCH", "svc:{*}:*:rep", "COUNT", 1000)
                for k in keys:
                    ks = k.decode()
                    if f"faults-{RUN_TAG}-" in ks and not any(c and c in ks for c in consumers):
                        orphans.append({"key": ks, "pttl_ms": r.command("PTTL", k)})
                if cursor == b"0":
                    break
        return {"dead_gateway_streams": out, "orphan_service_reply_streams": orphans}

    def main(self):
        args = self.args
        self.templates = {p.binary: p for p in self.suite.procs}
        log("starting a second replica of every service and a second gateway")
        self.add_replicas()
        originals = {p.pid: p.label for p in self.suite.procs}
        for w in self.workers:
            w.setup()
            w.start()
        scen = []
        for s in SERVICES:
            scen.append((f"kill9-{s}", self.kill9(s), lambda s=s: self.replace(f"adi-{s}")))
        scen += [("redis-restart", self.fault_redis, None),
                 ("pg-restart", self.fault_pg, None),
                 ("gateway-kill", self.fault_gateway, lambda: self.replace("adi-gateway")),
                 ("sigterm-all", self.fault_sigterm, None)]
        if args.only:
            scen = [s for s in scen if s[0] in args.only.split(",")]
        if any(s[0] == "redis-restart" for s in scen):
            aof_on()
        for name, fault, restore in scen:
            log(f"scenario {name}")
            self.run_scenario(name, fault, restore)
        self.stop.set()
        for w in self.workers:
            w.go.set()
            w.join(timeout=60)
        streams = self.check_reply_streams(final=True)
        # The processes that no fault targeted are the originals (no restart behind our back).
        survivors = [p.label for p in self.suite.procs if p.pid in originals]
        report = {"mode": args.mode, "concurrency": args.concurrency, "duration_s": args.duration,
                  "scenarios": self.results, "streams": streams,
                  "untouched_processes": survivors, "failures": self.failures}
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)
        print_table(self.results)
        for fl in self.failures:
            print(f"FAIL: {fl}")
        print(f"result: {args.out}")
        return 1 if self.failures else 0


TABLE_KEYS = ["scenario", "requests", "2xx", "5xx", "lost", "duplicated", "recovery_s"]


def print_table(rows):
    cols = TABLE_KEYS + ["audit_lost", "conn_errors", "pre_fault_rps"]
    hdr = ["scenario", "requests", "2xx", "5xx", "lost", "duplicated", "recovery",
           "audit_lost", "conn_err", "rps_before"]
    cells = [[("-" if r.get(k) is None else (f"{r[k]}s" if k == "recovery_s" else str(r[k])))
              for k in cols] for r in rows]
    w = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(hdr)]
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(hdr)))
    for c in cells:
        print("  ".join(v.ljust(w[i]) for i, v in enumerate(c)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["short", "long"], default="short")
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", help="comma list of scenario names")
    args = ap.parse_args()
    if args.mode == "short":
        args.concurrency, args.duration, args.warmup, args.audit_wait = 4, 9.0, 3.0, 30.0
    else:
        args.concurrency, args.duration, args.warmup, args.audit_wait = 12, 60.0, 10.0, 40.0
    return Runner(args).main()


if __name__ == "__main__":
    sys.exit(main())
