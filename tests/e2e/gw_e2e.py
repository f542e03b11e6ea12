# SPDX-License-Identifier: MIT
"""Helpers for the gateway's end-to-end tests (stdlib only).

- http(): one HTTP/1.1 request on a fresh connection, returning status, headers and body;
- Redis: a minimal RESP client for the test stack's Redis (REDIS_URL);
- mp_pack / mp_unpack: the msgpack subset the bus uses (maps, arrays, strings, ints, nil, bools,
  floats, bin), to craft request-stream entries and to play a service in the private-gateway tests;
- paused(): SIGSTOP a suite service through its pid file, SIGCONT on exit (always);
- wait_for(): polls a condition until it holds or a deadline passes (never a fixed sleep);
- PrivateGateway: an adi-gateway of the test's own, with its own settings and log;
- HealthFake, PrivateDatabase, PrivateService: a private stack around it: services played by the
  test that answer health, a database of its own, real services (adi-<svc>) started and killed.
"""
import http.client as httpclient
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
from contextlib import contextmanager

WAIT = 30.0  # seconds any condition may take before a test fails


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run the test through ctest (fixture 'suite')")
    return value


def gateway_url():
    return env("GATEWAY_URL")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:300]!r}>"


def http(method, path, body=None, headers=None, base=None, timeout=WAIT, source=None):
    """One request on its own connection. `body` may be bytes, str or a JSON-able object.
    `source` binds the client socket to that local address first (e.g. "127.0.0.2": Linux routes
    all of 127/8 to the loopback interface), so a test can play clients at several addresses."""
    url = urllib.parse.urlsplit(base or gateway_url())
    conn = httpclient.HTTPConnection(url.hostname, url.port, timeout=timeout,
                                     source_address=(source, 0) if source else None)
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode("utf-8")
    try:
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def raw_request(data, base=None, timeout=WAIT):
    """Sends raw bytes, half-closes, returns everything the server answered."""
    url = urllib.parse.urlsplit(base or gateway_url())
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return out


def parse_raw_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return Response(status, headers, body)


def wait_for(cond, what, timeout=WAIT, interval=0.05):
    """Polls cond() until it returns a truthy value, which is returned; fails after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


# ---- Redis ---------------------------------------------------------------------------------


class RedisError(Exception):
    pass


class Redis:
    """A blocking RESP2 client, enough for XADD, XINFO, EXISTS, DEL and friends."""

    def __init__(self, url=None, port=None):
        if port is None:
            u = urllib.parse.urlsplit(url or env("REDIS_URL"))
            host, port = u.hostname, u.port or 6379
        else:
            host = "127.0.0.1"
        self.sock = socket.create_connection((host, port), timeout=WAIT)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode("utf-8")
            elif isinstance(a, int):
                a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RedisError(f"unexpected reply {line!r}")


def group_info(r, stream, group):
    """XINFO GROUPS of `stream` as a dict for `group`, or None."""
    try:
        groups = r.command("XINFO", "GROUPS", stream)
    except RedisError:
        return None
    for g in groups:
        d = {g[i].decode(): g[i + 1] for i in range(0, len(g), 2)}
        if d.get("name") == group.encode():
            return d
    return None


# ---- msgpack subset ------------------------------------------------------------------------


def mp_pack(o):
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if -32 <= o < 0:
            return struct.pack("b", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, float):
        return b"\xcb" + struct.pack(">d", o)
    if isinstance(o, str):
        b = o.encode("utf-8")
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(o, (bytes, bytearray)):
        return b"\xc6" + struct.pack(">I", len(o)) + bytes(o)
    if isinstance(o, RawMsgpack):
        return o.data
    if isinstance(o, (list, tuple)):
        return b"\xdd" + struct.pack(">I", len(o)) + b"".join(mp_pack(x) for x in o)
    if isinstance(o, dict):
        return b"\xdf" + struct.pack(">I", len(o)) + b"".join(
            mp_pack(k) + mp_pack(v) for k, v in o.items())
    raise TypeError(type(o))


class RawMsgpack:
    """Already-encoded msgpack bytes to embed as one value."""

    def __init__(self, data):
        self.data = data


def mp_unpack(data):
    value, pos = _unpack(data, 0)
    if pos != len(data):
        raise ValueError("trailing bytes")
    return value


def _unpack(d, i):
    c = d[i]
    i += 1
    if c < 0x80:
        return c, i
    if c >= 0xE0:
        return c - 256, i
    if 0x80 <= c <= 0x8F:
        return _map(d, i, c & 0x0F)
    if 0x90 <= c <= 0x9F:
        return _arr(d, i, c & 0x0F)
    if 0xA0 <= c <= 0xBF:
        n = c & 0x1F
        return d[i:i + n].decode("utf-8"), i + n
    if c == 0xC0:
        return None, i
    if c in (0xC2, 0xC3):
        return c == 0xC3, i
    sizes = {0xC4: 1, 0xC5: 2, 0xC6: 4, 0xD9: 1, 0xDA: 2, 0xDB: 4}
    if c in sizes:
        w = sizes[c]
        n = int.from_bytes(d[i:i + w], "big")
        i += w
        raw = d[i:i + n]
        return (bytes(raw) if c <= 0xC6 else raw.decode("utf-8")), i + n
    ints = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q", 0xD0: ">b", 0xD1: ">h", 0xD2: ">i",
            0xD3: ">q", 0xCA: ">f", 0xCB: ">d"}
    if c in ints:
        fmt = ints[c]
        n = struct.calcsize(fmt)
        return struct.unpack(fmt, d[i:i + n])[0], i + n
    if c in (0xDC, 0xDD):
        w = 2 if c == 0xDC else 4
        return _arr(d, i + w, int.from_bytes(d[i:i + w], "big"))
    if c in (0xDE, 0xDF):
        w = 2 if c == 0xDE else 4
        return _map(d, i + w, int.from_bytes(d[i:i + w], "big"))
    raise ValueError(f"unsupported msgpack byte 0x{c:02x}")


def _arr(d, i, n):
    out = []
    for _ in range(n):
        v, i = _unpack(d, i)
        out.append(v)
    return out, i


def _map(d, i, n):
    out = {}
    for _ in range(n):
        k, i = _unpack(d, i)
        v, i = _unpack(d, i)
        out[k] = v
    return out, i


def unpack_raw_field(env, name):
    """An envelope's RAW field (params, body) decoded, whether sent as bin or inline."""
    v = env.get(name)
    if isinstance(v, (bytes, bytearray)):
        return mp_unpack(v)
    return v


def expired_envelope(n, op="sys.health", reply_to="gw:{e2e-backlog}:rep"):
    """A well-formed request whose deadline has passed: a service acknowledges it unexecuted."""
    return mp_pack({"v": 1, "id": f"e2e-backlog-{n}", "op": op, "reply_to": reply_to,
                    "deadline_ms": 1, "trace_id": "e2e", "principal": None, "params": None,
                    "body": None})


# ---- suite processes -----------------------------------------------------------------------


def service_pid(svc):
    with open(os.path.join(env("ADI_PIDS_DIR"), f"adi-{svc}.pid")) as f:
        return int(f.read().strip())


@contextmanager
def paused(svc):
    """Stops a suite service with SIGSTOP for the block; SIGCONT always follows."""
    pid = service_pid(svc)
    os.kill(pid, signal.SIGSTOP)
    # kill() returns before every thread has stopped: a worker blocked in XREADGROUP could still
    # take and answer the next request. Wait until each thread of the process is in state T.
    def all_stopped():
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
            for t in tasks:
                with open(f"/proc/{pid}/task/{t}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
                        return False
            return True
        except FileNotFoundError:
            return False
    wait_for(all_stopped, f"adi-{svc} to stop")
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def effective_config():
    """The suite gateway's config.effective log line as a dict (how the harness configured it)."""
    path = os.path.join(env("ADI_LOG_DIR"), "adi-gateway.log")
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if '"config.effective"' in line:
                msg = json.loads(line)["msg"]
                return dict(re.findall(r"(\w+)=(\S*)", msg))
    raise AssertionError("no config.effective line in " + path)


def gateway_backlogs(svc, ops_url=None):
    """Every gateway thread's view of `svc`'s backlog (adi_gateway_backend_backlog gauges)."""
    base = ops_url or "http://127.0.0.1:%s" % env("ADI_OPS_PORT_GATEWAY")
    text = http("GET", "/metrics", base=base).body.decode()
    out = []
    for line in text.splitlines():
        if line.startswith("adi_gateway_backend_backlog{") and f'backend="{svc}"' in line:
            out.append(float(line.rsplit(" ", 1)[1]))
    return out


def ping_ok(path="/api/health/ping/", **kwargs):
    """POST to the ping route until it is answered (not 503/504). The suite's deadline is short
    (2 s): on a loaded machine a round trip may miss it, correctly answered 504, which is not what
    the callers test. A 5xx releases an Idempotency-Key, so retrying with one is fine."""
    def once():
        r = http("POST", path, **kwargs)
        return None if r.status in (503, 504) else r
    return wait_for(once, f"POST {path} to be answered")


def health_of(svc, base=None):
    r = http("GET", "/api/health/", base=base)
    return r.status, r.json()["services"][svc]["status"]


# ---- private processes ---------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")


class PrivateRedis:
    """A redis-server of the test's own (nothing on disk), restartable on the same port."""

    def __init__(self, workdir):
        self.port = free_port()
        self.workdir = workdir
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self.workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                with Redis(port=self.port) as r:
                    return r.command("PING") == "PONG"
            except OSError:
                return False
        wait_for(up, "redis-server to answer")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=WAIT)
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"


class _PrivateProcess:
    """A binary of ADI_BIN_DIR run by a test, its output in `log_path`: the log helpers, kill()
    (a crash: SIGKILL) and stop() (SIGTERM, returning the exit code)."""

    def _spawn(self, binary, environ):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([os.path.join(env("ADI_BIN_DIR"), binary)], env=environ,
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_events(self, event):
        out = []
        for line in self.read_log().splitlines():
            if line.startswith("{"):
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if d.get("event") == event:
                    out.append(d)
        return out

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=WAIT)
        self.log.close()

    def stop(self):
        """SIGTERM, wait, return the exit code (None if it had to be killed)."""
        code = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        else:
            code = self.proc.returncode
        if not self.log.closed:
            self.log.close()
        return code

    def sanitizer_report(self):
        text = self.read_log()
        return [m for m in SANITIZER_MARKS if m in text]


class PrivateGateway(_PrivateProcess):
    """adi-gateway started with the given settings; stop() sends SIGTERM and returns the code."""

    def __init__(self, workdir, redis_url, **settings):
        self.port = free_port()
        self.ops_port = free_port()
        self.log_path = os.path.join(workdir, f"adi-gateway-{self.port}.log")
        environ = dict(os.environ)
        for k in ("GATEWAY_URL", "CORS_ALLOWED_ORIGINS", "GATEWAY_INSTANCE"):
            environ.pop(k, None)
        environ.update({"REDIS_URL": redis_url, "HTTP_HOST": "127.0.0.1",
                        "HTTP_PORT": str(self.port), "OPS_HOST": "127.0.0.1",
                        "OPS_PORT": str(self.ops_port), "GATEWAY_THREADS": "2"})
        environ.setdefault("JWT_SIGNING_KEY", "e2e-private-gateway-key")
        for k, v in settings.items():  # None: the variable unset (the binary's default)
            if v is None:
                environ.pop(k, None)
            else:
                environ[k] = str(v)
        self._spawn("adi-gateway", environ)
        wait_for(self._listening, "the private gateway to listen")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def ops_url(self):
        return f"http://127.0.0.1:{self.ops_port}"

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"adi-gateway exited with {self.proc.returncode}:\n"
                                 + self.read_log())
        try:
            return http("GET", "/api/health/version/", base=self.url, timeout=2).status == 200
        except OSError:
            return False

    def ready(self):
        try:
            return http("GET", "/readyz", base=self.ops_url, timeout=2).status == 200
        except OSError:
            return False

    def metric_series(self, name):
        """{labels: value} of metric `name` from the ops port."""
        text = http("GET", "/metrics", base=self.ops_url).body.decode()
        out = {}
        for line in text.splitlines():
            if line.startswith(name + "{"):
                labels, _, value = line[len(name):].rpartition(" ")
                out[labels] = float(value)
        return out


class FakeService:
    """Plays service `name` on a private Redis: creates its group, reads envelopes, replies."""

    def __init__(self, redis_port, name="auth"):
        self.name = name
        self.stream = "svc:{%s}:req" % name
        self.r = Redis(port=redis_port)
        self.r.command("XGROUP", "CREATE", self.stream, name, "$", "MKSTREAM")

    def close(self):
        self.r.close()

    def take(self, timeout_ms=10000):
        """Blocks for the next envelope; returns (entry id, envelope dict)."""
        rep = self.r.command("XREADGROUP", "GROUP", self.name, "e2e", "COUNT", 1,
                             "BLOCK", timeout_ms, "STREAMS", self.stream, ">")
        if rep is None:
            raise AssertionError("no request reached the fake service")
        entry_id, fields = rep[0][1][0]
        msg = dict(zip(fields[0::2], fields[1::2]))[b"m"]
        return entry_id, mp_unpack(msg)

    def reply(self, envelope, status, body=None, error=None):
        rep = {"v": 1, "id": envelope["id"], "status": status}
        if body is not None:
            rep["body"] = RawMsgpack(mp_pack(body))
        if error is not None:
            rep["error"] = error
        self.r.command("XADD", envelope["reply_to"], "MAXLEN", "~", 1000, "*", "m",
                       mp_pack(rep))


class HealthFake:
    """Plays service `name` on a private Redis in a thread: answers every sys.health "ok" (and
    anything else 503), so that a private gateway's health aggregate can be all "ok" without the
    real service. stop() ends the thread."""

    def __init__(self, redis_port, name):
        self.name = name
        self.stream = "svc:{%s}:req" % name
        self.r = Redis(port=redis_port)
        self.r.command("XGROUP", "CREATE", self.stream, name, "$", "MKSTREAM")
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.is_set():
            rep = self.r.command("XREADGROUP", "GROUP", self.name, "e2e", "COUNT", 16,
                                 "BLOCK", 100, "STREAMS", self.stream, ">")
            for entry_id, fields in (rep[0][1] if rep else []):
                envelope = mp_unpack(dict(zip(fields[0::2], fields[1::2]))[b"m"])
                out = {"v": 1, "id": envelope["id"], "status": 200}
                if envelope["op"] == "sys.health":
                    out["body"] = RawMsgpack(mp_pack({
                        "service": self.name, "status": "ok", "version": "e2e-fake",
                        "consumer": "e2e", "database": True}))
                else:
                    out.update(status=503, error={"code": "unavailable", "message": "fake"})
                self.r.command("XADD", envelope["reply_to"], "MAXLEN", "~", 1000, "*", "m",
                               mp_pack(out))
                self.r.command("XACK", self.stream, self.name, entry_id)

    def stop(self):
        self.done.set()
        self.thread.join(timeout=WAIT)
        self.r.close()


class PrivateDatabase:
    """A database of the test's own in the stack's PostgreSQL, migrated with adi-admin as the
    suite's is (the roles adi_<svc> are the cluster's, shared with the suite). drop() removes it."""

    def __init__(self, prefix="e2e_gw"):
        self.name = f"{prefix}_{os.getpid()}_{os.urandom(4).hex()}"
        self.admin_url = env("DATABASE_URL")
        self.psql = os.path.join(env("ADI_PG_BIN"), "psql")
        self.sql(f"CREATE DATABASE {self.name}", db_url=self.admin_url)
        out = subprocess.run([os.path.join(env("ADI_BIN_DIR"), "adi-admin"), "migrate"],
                             env=dict(os.environ, DATABASE_URL=self.url(),
                                      MIGRATIONS_DIR=os.path.join(env("ADI_REPO"), "services")),
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            self.drop()
            raise AssertionError("adi-admin migrate failed:\n" + out.stdout + out.stderr)

    def url(self, role=None):
        """The database's URL for `role` (None: the stack's superuser)."""
        u = urllib.parse.urlsplit(self.admin_url)
        netloc = u.netloc if role is None else f"{role}@{u.hostname}:{u.port}"
        return urllib.parse.urlunsplit((u.scheme, netloc, "/" + self.name, "", ""))

    def sql(self, statement, db_url=None):
        out = subprocess.run([self.psql, db_url or self.url(), "-qAtX", "-v", "ON_ERROR_STOP=1",
                              "-c", statement], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise AssertionError(f"psql: {statement}: {out.stderr}")
        return out.stdout

    def drop(self):
        self.sql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)", db_url=self.admin_url)


class PrivateService(_PrivateProcess):
    """A real adi-<name> (from ADI_BIN_DIR) of the test's own: its Redis and database URLs given,
    one worker, a free ops port, its log in `workdir`. kill() is a crash (SIGKILL), stop() a
    SIGTERM returning the exit code."""

    def __init__(self, workdir, name, redis_url, database_url, **settings):
        self.name = name
        self.ops_port = free_port()
        self.log_path = os.path.join(workdir, f"adi-{name}-{self.ops_port}.log")
        environ = dict(os.environ, REDIS_URL=redis_url, DATABASE_URL=database_url,
                       OPS_HOST="127.0.0.1", OPS_PORT=str(self.ops_port), WORKERS="1",
                       SHUTDOWN_GRACE_MS="5000")
        environ.pop("CONSUMER_NAME", None)
        environ.update({k: str(v) for k, v in settings.items()})
        self._spawn(f"adi-{name}", environ)
        wait_for(self.ready, f"the private adi-{name} to be ready")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"adi-{self.name} exited with {self.proc.returncode}:\n"
                                 + self.read_log())
        try:
            return http("GET", "/readyz", base=f"http://127.0.0.1:{self.ops_port}",
                        timeout=2).status == 200
        except OSError:
            return False


class Call:
    """An HTTP request running in a thread while the test plays the service."""

    def __init__(self, gw, method, path, body=None, headers=None, source=None):
        self.result = None
        self.error = None

        def run():
            try:
                self.result = http(method, path, body=body, headers=headers, base=gw.url,
                                   source=source)
            except Exception as e:  # reported by wait()
                self.error = e
        self.thread = threading.Thread(target=run)
        self.thread.start()

    def wait(self):
        self.thread.join(timeout=60)
        if self.error is not None:
            raise self.error
        return self.result
