# SPDX-License-Identifier: MIT
"""
What the deployment files rely on, tested on the binaries themselves: the suite as the images and
manifests run it, on this machine.

- The binaries and migrations come from `cmake --install` (the Dockerfile's layout: adi-admin
  reads MIGRATIONS_DIR=<prefix>/share/adinsights, as the admin image sets).
- `adi-admin migrate` is idempotent, as a Job rerun applies it: a second run applies nothing.
- Redis runs through k8s/base/redis/redis-acl.sh with k8s/base/redis/acl.rules, and every process
  logs in as its own ACL user with a random password, as compose and Kubernetes do; the settings
  are the ConfigMap's of k8s/base (ops and HTTP on loopback here).
- Every ops port answers /healthz and /readyz; the gateway answers /api/health/; the Dockerfile's
  HEALTHCHECK commands and compose's health checks succeed against the running processes.
- A signup, a login, /api/me/, a credential, an invitation, its acceptance, a role grant and the
  audit log (every bus path: gateway -> services, tenant -> auth, events on ev:audit and ev:auth,
  tasks:default), plus adi-admin deactivate-user, rotate-keys, enqueue, task-status, queues and
  requeue-dead as the admin user, run without a
  single ACL denial (Redis's ACL LOG stays empty); forbidden accesses are refused; KEDA's user
  reads the lag and pending counts of every stream the ScaledObjects name.
- No password or key appears in any log.
- SIGTERM: every process exits 0 within its Deployment's terminationGracePeriodSeconds.

Needs the ctest fixture `stack` (its PostgreSQL; a database of its own is made and dropped) and
ADI_BUILD_DIR (the build tree, for `cmake --install`).
"""
import base64
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import uuid

import yaml

REPO = os.environ.get("ADI_REPO", os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
SERVICES = ["auth", "tenant", "vault", "task-runner"]
WAIT_S = 60  # bound of every wait for a condition


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_for(cond, what, procs=()):
    """Polls cond() until true; fails after WAIT_S or when a watched process has exited."""
    deadline = time.monotonic() + WAIT_S
    while True:
        if cond():
            return
        for name, p in procs:
            if p.poll() is not None:
                raise AssertionError(f"{name} exited ({p.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Redis:
    """A minimal RESP client (AUTH as an ACL user, then commands)."""

    def __init__(self, port, user=None, password=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        if user:
            self.command("AUTH", user, password)

    def close(self):
        self.sock.close()

    def command(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._read()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ValueError(f"unexpected reply {line!r}")


class RedisError(str):
    """An error reply (returned, not raised, so a test can assert on it)."""


def api(port, method, path, body=None, token=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers or {})
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data and data[:1] in b"[{" else data.decode())
    finally:
        c.close()


def get_status(port, path):
    try:
        return api(port, "GET", path)[0]
    except OSError:
        return 0


def manifest(name):
    with open(os.path.join(REPO, "k8s/base", name)) as f:
        return list(yaml.safe_load_all(f))


class DeploymentRuntime(unittest.TestCase):
    """One suite for the whole class, started as the deployment starts it."""

    @classmethod
    def setUpClass(cls):
        cls.procs = {}
        cls.logs = {}
        cls.tmp = tempfile.mkdtemp(prefix="adi-deploy-")
        cls.db = None
        try:
            cls._start()
        except BaseException:
            cls._cleanup()
            raise

    @classmethod
    def _start(cls):
        build = os.environ["ADI_BUILD_DIR"]
        prefix = os.path.join(cls.tmp, "usr")
        subprocess.run(["cmake", "--install", build, "--prefix", prefix], check=True,
                       stdout=subprocess.DEVNULL)
        cls.bin = os.path.join(prefix, "bin")
        cls.migrations = os.path.join(prefix, "share/adinsights")

        # The settings of the ConfigMap adi-config (k8s/base), loopback addresses here.
        kust = manifest("kustomization.yaml")[0]
        gen = next(g for g in kust["configMapGenerator"] if g["name"] == "adi-config")
        cls.config = dict(kv.split("=", 1) for kv in gen["literals"])
        cls.grace_s = {}
        for svc in ["gateway"] + SERVICES:
            d = next(o for o in manifest(f"{svc}.yaml") if o["kind"] == "Deployment")
            cls.grace_s[svc] = d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]

        # A database of our own in the stack's cluster.
        admin_url = os.environ["DATABASE_URL"]
        cls.psql = os.path.join(os.environ["ADI_PG_BIN"], "psql")
        cls.db = f"adi_deploy_{os.getpid()}"
        subprocess.run([cls.psql, admin_url, "-qc", f"CREATE DATABASE {cls.db}"], check=True)
        cls.admin_url = re.sub(r"/[^/]*$", f"/{cls.db}", admin_url)
        pg_port = os.environ["ADI_PG_PORT"]

        # Redis with the ACL users (and one more, only here, to read the ACL log).
        rules = os.path.join(cls.tmp, "acl.rules")
        shutil.copy(os.path.join(REPO, "k8s/base/redis/acl.rules"), rules)
        with open(rules, "a") as f:
            f.write("user inspector on resetchannels -@all +ping +acl|log +xinfo|groups +type ~*\n")
        with open(rules) as f:
            users = [line.split()[1] for line in f if line.startswith("user ")]
        cls.pw = {u: secrets.token_hex(16) for u in users if u != "default"}
        ports = free_ports(2 + 2 * len(SERVICES) + 2)
        cls.redis_port = ports.pop()
        renv = {"PATH": os.environ["PATH"], "ACL_RULES": rules,
                "ACL_FILE": os.path.join(cls.tmp, "run/users.acl")}
        for u, p in cls.pw.items():
            renv["REDIS_PASSWORD_" + u.upper().replace("-", "_")] = p
        cls._spawn("redis-server", ["sh", os.path.join(REPO, "k8s/base/redis/redis-acl.sh"),
                                    "--port", str(cls.redis_port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no", "--dir", cls.tmp], renv)
        wait_for(lambda: cls._ping(), "redis-server", list(cls.procs.items()))

        # Migrations, as the Job runs them.
        cls.migrate_out = [cls._admin("migrate").stdout]

        cls.jwt_key = base64.b64encode(secrets.token_bytes(48)).decode()
        cls.kms_key = base64.b64encode(secrets.token_bytes(32)).decode()
        base_env = {k: v for k, v in os.environ.items()
                    if k in ("PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}
        base_env.update(cls.config)
        base_env.update({"OPS_HOST": "127.0.0.1", "HTTP_HOST": "127.0.0.1", "WORKERS": "2",
                         "PASSWORD_ITERATIONS": "1000"})
        cls.ops = {}
        for svc in SERVICES:
            port = ports.pop()
            cls.ops[svc] = port
            env = dict(base_env, OPS_PORT=str(port),
                       CONSUMER_NAME=f"adi-{svc}-5d8c7-{secrets.token_hex(3)}",
                       REDIS_URL=f"redis://{svc}:{cls.pw[svc]}@127.0.0.1:{cls.redis_port}",
                       DATABASE_URL=f"postgresql://adi_{svc.replace('-', '_')}@127.0.0.1:{pg_port}/{cls.db}")
            if svc == "auth":
                env["JWT_SIGNING_KEY"] = cls.jwt_key
                env["SETTLE_AFTER_S"] = "1"  # so the settle chore's calls to tenant happen here
            if svc == "vault":
                env["KMS_LOCAL_KEY"] = cls.kms_key
            cls._spawn(f"adi-{svc}", [os.path.join(cls.bin, f"adi-{svc}")], env)
        cls.http_port = ports.pop()
        cls.ops["gateway"] = ports.pop()
        env = dict(base_env, OPS_PORT=str(cls.ops["gateway"]), HTTP_PORT=str(cls.http_port),
                   GATEWAY_INSTANCE=f"adi-gateway-5d8c7-{secrets.token_hex(3)}",
                   REDIS_URL=f"redis://gateway:{cls.pw['gateway']}@127.0.0.1:{cls.redis_port}",
                   JWT_SIGNING_KEY=cls.jwt_key, LOGIN_ADDRESS_MAX_FAILURES="1000000")
        cls._spawn("adi-gateway", [os.path.join(cls.bin, "adi-gateway")], env)
        procs = list(cls.procs.items())
        wait_for(lambda: get_status(cls.http_port, "/api/health/") == 200, "GET /api/health/", procs)
        threads = int(cls.config["GATEWAY_THREADS"])

        def streams_up():
            try:
                _, text = api(cls.ops["gateway"], "GET", "/metrics")
            except OSError:
                return False
            return len(re.findall(r"^adi_gateway_backend_stream_up\{.*\} 1$", text, re.M)) >= threads * 4
        wait_for(streams_up, "every gateway thread to see every service's stream", procs)

    @classmethod
    def _spawn(cls, name, argv, env):
        log = open(os.path.join(cls.tmp, f"{name}.log"), "wb")
        cls.logs[name] = log.name
        cls.procs[name] = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT)
        log.close()

    @classmethod
    def _ping(cls):
        try:
            r = Redis(cls.redis_port)  # the default user: PING only
            try:
                return r.command("PING") == "PONG"
            finally:
                r.close()
        except OSError:
            return False

    @classmethod
    def _admin(cls, *args, redis_user=None, check=True):
        env = {k: v for k, v in os.environ.items()
               if k in ("PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")}
        env.update(DATABASE_URL=cls.admin_url, MIGRATIONS_DIR=cls.migrations, LOG_LEVEL="info",
                   PASSWORD_ITERATIONS="1000")
        if redis_user:
            env["REDIS_URL"] = f"redis://{redis_user}:{cls.pw[redis_user]}@127.0.0.1:{cls.redis_port}"
        r = subprocess.run([os.path.join(cls.bin, "adi-admin"), *args], env=env, text=True,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=WAIT_S)
        with open(os.path.join(cls.tmp, "adi-admin.log"), "a") as f:
            f.write(r.stdout + r.stderr)
        if check and r.returncode != 0:
            raise AssertionError(f"adi-admin {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    @classmethod
    def _cleanup(cls):
        for name, p in cls.procs.items():
            if p.poll() is None:
                p.kill()
                p.wait()
        if cls.db:
            subprocess.run([cls.psql, os.environ["DATABASE_URL"], "-qc",
                            f"DROP DATABASE IF EXISTS {cls.db} WITH (FORCE)"], check=False)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls._cleanup()

    def user(self, name):
        r = Redis(self.redis_port, name, self.pw[name])
        self.addCleanup(r.close)
        return r

    # ---- the tests, in name order; the last one stops everything ----------------------------

    def test_1_ops_ports_answer_healthz_and_readyz(self):
        for svc, port in self.ops.items():
            for path in ("/healthz", "/readyz"):
                self.assertEqual(get_status(port, path), 200, f"{svc} {path}")
            status, text = api(port, "GET", "/metrics")
            self.assertEqual(status, 200, f"{svc} /metrics")
            self.assertIn("# TYPE", text)

    def test_2_image_and_compose_health_checks_pass(self):
        with open(os.path.join(REPO, "Dockerfile")) as f:
            df = f.read().replace("\\\n", " ")
        for stage in re.split(r"^FROM ", df, flags=re.M)[1:]:
            name = stage.split()[2] if len(stage.split()) > 2 else ""
            m = re.search(r"^HEALTHCHECK\s.*?CMD\s+(\[.*\])\s*$", stage, re.M)
            if name not in self.ops or not m:
                continue
            argv = json.loads(m.group(1))
            r = subprocess.run(argv, env={"PATH": os.environ["PATH"], "OPS_PORT": str(self.ops[name])},
                               timeout=10)
            self.assertEqual(r.returncode, 0, f"the {name} image's HEALTHCHECK fails: {argv}")
        with open(os.path.join(REPO, "compose/compose.yaml")) as f:
            compose = yaml.safe_load(f)
        for svc, port in self.ops.items():
            test = compose["services"][svc]["healthcheck"]["test"]
            self.assertEqual(test[0], "CMD")
            argv = [a.replace("$$", "$") for a in test[1:]]
            default = {"gateway": 9100, "auth": 9101, "tenant": 9102, "vault": 9103, "task-runner": 9104}[svc]
            argv = [a.replace(f"/127.0.0.1/{default} ", f"/127.0.0.1/{port} ") for a in argv]
            r = subprocess.run(argv, env={"PATH": os.environ["PATH"]}, timeout=10)
            self.assertEqual(r.returncode, 0, f"compose's {svc} health check fails: {argv}")

    def test_3_every_bus_path_runs_without_an_acl_denial(self):
        p = self.http_port
        email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
        status, t = api(p, "POST", "/api/tenants/",
                         {"name": "Deploy Co", "admin_email": email, "admin_password": "s3cret-pass"},
                         headers={"Idempotency-Key": str(uuid.uuid4())})
        self.assertEqual(status, 201, t)
        status, login = api(p, "POST", "/api/auth/login/", {"username": email, "password": "s3cret-pass"})
        self.assertEqual(status, 200, login)
        tok = login["access"]
        self.assertEqual(api(p, "GET", "/api/me/", token=tok)[0], 200)
        status, cred = api(p, "POST", "/api/platform-credentials/",
                            {"provider": "META", "account_id": "act_1", "access_token": "tok-secret"},
                            token=tok)
        self.assertEqual(status, 201, cred)
        status, inv = api(p, "POST", f"/api/tenants/{t['id']}/invite/",
                           {"email": f"new-{uuid.uuid4().hex[:8]}@example.com", "role": "VIEWER"}, token=tok)
        self.assertEqual(status, 201, inv)
        status, user = api(p, "POST", "/api/users/accept-invite/",
                            {"token": inv["token"], "password": "an0ther-pass"})
        self.assertEqual(status, 201, user)
        status, grant = api(p, "POST", "/api/roles/assign/", {"user": user["id"], "role": "ANALYST"},
                             token=tok)
        self.assertEqual(status, 201, grant)

        def audited():
            s, logs = api(p, "GET", "/api/audit-logs/", token=tok)
            rows = logs.get("results", logs) if isinstance(logs, dict) else logs
            return s == 200 and {"credential_created", "role_assigned"} <= {e.get("action") for e in rows}
        wait_for(audited, "the audit entries (ev:audit consumed by adi-tenant)")
        # The operators' CLI as the admin user: ev:auth, and the vault through the bus.
        self._admin("deactivate-user", "--email", user["email"], redis_user="admin")
        self._admin("rotate-keys", redis_user="admin")
        task = self._admin("enqueue", "rotate_deks", "--delay-ms", "3600000", redis_user="admin")
        self._admin("task-status", task.stdout.strip(), redis_user="admin")
        self._admin("queues", redis_user="admin")
        self._admin("requeue-dead", "default", redis_user="admin")

        # Auth's settle chore asked the tenant service about the signup's and the accept's users
        # (sys.settled on svc:{tenant}:req) and kept both.
        def settled():
            url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + self.db
            out = subprocess.run([self.psql, url, "-qAtX", "-c",
                                  "SELECT count(*) FILTER (WHERE settle_key IS NOT NULL), "
                                  "count(*) FROM auth.users"],
                                 capture_output=True, text=True, check=True).stdout.strip()
            return out == "0|2"
        wait_for(settled, "auth to settle the users it made for the tenant service")

        # Every task (the invitation mail) taken and acknowledged, so its calls happened.
        insp = self.user("inspector")

        def tasks_done():
            groups = insp.command("XINFO", "GROUPS", "tasks:default")
            info = [dict(zip(g[::2], g[1::2])) for g in groups] if isinstance(groups, list) else []
            return any(g["name"] == "task-runner" and g["pending"] == 0 and g["lag"] == 0 for g in info)
        wait_for(tasks_done, "the task runner to finish the queued tasks")

        log = insp.command("ACL", "LOG")
        self.assertEqual(log, [], f"Redis refused commands of the suite: {log}")

    def test_4_acl_users_are_confined_to_their_keys(self):
        denied = lambda r: isinstance(r, RedisError) and r.startswith("NOPERM")  # noqa: E731
        self.assertTrue(denied(self.user("auth").command("XADD", "svc:{vault}:req", "*", "m", "x")))
        self.assertTrue(denied(self.user("auth").command("XRANGE", "gw:{x-0}:rep", "-", "+")))
        self.assertTrue(denied(self.user("gateway").command(
            "XREADGROUP", "GROUP", "auth", "intruder", "COUNT", "1", "STREAMS", "svc:{auth}:req", ">")))
        self.assertTrue(denied(self.user("gateway").command("DEL", "svc:{auth}:req")))
        self.assertTrue(denied(self.user("vault").command("XRANGE", "ev:audit", "-", "+")))
        self.assertTrue(denied(self.user("tenant").command("HGETALL", "task:whatever")))
        self.assertTrue(denied(self.user("keda").command("XADD", "svc:{auth}:req", "*", "m", "x")))
        anon = Redis(self.redis_port)
        self.addCleanup(anon.close)
        self.assertTrue(denied(anon.command("GET", "x")))
        self.assertEqual(anon.command("PING"), "PONG")
        # What the ScaledObjects read, as KEDA's user: each group's lag and pending count.
        keda = self.user("keda")
        for stream, group in [(f"svc:{{{s}}}:req", s) for s in SERVICES] + [("tasks:default", "task-runner")]:
            groups = keda.command("XINFO", "GROUPS", stream)
            self.assertIsInstance(groups, list, f"XINFO GROUPS {stream}: {groups}")
            info = [dict(zip(g[::2], g[1::2])) for g in groups]
            self.assertIn(group, [g["name"] for g in info], f"{stream} has no consumer group {group}")
            self.assertIn("lag", info[0])
            self.assertIsInstance(keda.command("XPENDING", stream, group), list)

    def test_5_migrate_is_idempotent(self):
        again = self._admin("migrate").stdout
        self.assertRegex(again, r"\b0 applied")
        status = self._admin("migrate", "--status").stdout
        self.assertNotIn("pending", status)
        self.assertRegex(self.migrate_out[0], r"[1-9]\d* applied")

    def test_9_sigterm_drains_within_the_grace_period(self):
        for name in ["adi-gateway"] + [f"adi-{s}" for s in SERVICES]:
            p = self.procs[name]
            self.assertIsNone(p.poll(), f"{name} died before SIGTERM")
            p.send_signal(signal.SIGTERM)
            grace = self.grace_s[name[4:]]
            try:
                rc = p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.fail(f"{name} did not exit within terminationGracePeriodSeconds ({grace} s)")
            self.assertEqual(rc, 0, f"{name} exited {rc} after SIGTERM")
        secrets_ = list(self.pw.values()) + [self.jwt_key, self.kms_key, "tok-secret"]
        for name, path in list(self.logs.items()) + [("adi-admin", os.path.join(self.tmp, "adi-admin.log"))]:
            with open(path, errors="replace") as f:
                text = f.read()
            self.assertNotRegex(text, r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:", name)
            for s in secrets_:
                self.assertNotIn(s, text, f"{name}'s log holds a secret")


if __name__ == "__main__":
    unittest.main()
