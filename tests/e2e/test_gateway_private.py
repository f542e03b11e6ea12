# SPDX-License-Identifier: MIT
"""The gateway with settings of the test's own: each test starts adi-gateway (from ADI_BIN_DIR) on
a private redis-server, where the test itself plays the backend service (it reads the envelope from
svc:{auth}:req and XADDs the reply), so every reply shape, timing and failure is under control.

Covered: the envelope the gateway builds (op, params, body, deadline, trace id), the rendering of
service replies (2xx bodies, 204, DRF validation errors, detail errors, hidden 500 text, 503 with
Retry-After, 401 with WWW-Authenticate), 504 at the deadline with a late reply ignored, 503 for a
service whose stream does not exist, the per-thread pending bound, CORS for listed and unlisted
origins, request bodies over MAX_BODY_BYTES (Content-Length and chunked), Redis going away and
coming back (503, /readyz, reconnection), graceful SIGTERM (no new connections, the request in
flight still answered, exit 0) and the configuration table and its errors (exit 2).
"""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import jwt  # Debian python3-jwt

from gw_e2e import (Call, FakeService, HealthFake, PrivateDatabase, PrivateGateway, PrivateRedis,
                    PrivateService, Redis, env, http, mp_pack, mp_unpack, parse_raw_response,
                    raw_request, unpack_raw_field, wait_for)

PING = "/api/health/ping/"
ORIGIN = "http://localhost:3000"


class PrivateTestCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="gw-e2e-", dir=env("ADI_TEST_DIR"))
        self.redis = PrivateRedis(self.dir)
        self.redis.start()
        self.gateways = []
        self.fakes = []

    def tearDown(self):
        reports = []
        for gw in self.gateways:
            if gw.proc.poll() is None:
                gw.stop()
            else:
                gw.log.close()
            reports += gw.sanitizer_report()
        for f in self.fakes:
            f.close()
        self.redis.stop()
        if reports:
            self.fail("sanitizer report in a private gateway's log (kept in %s)" % self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)

    def gateway(self, **settings):
        settings.setdefault("REQUEST_TIMEOUT_MS", 5000)
        gw = PrivateGateway(self.dir, self.redis.url, **settings)
        self.gateways.append(gw)
        wait_for(gw.ready, "the private gateway to be ready")
        return gw

    def fake(self):
        f = FakeService(self.redis.port)
        self.fakes.append(f)
        return f

    def wait_stream_seen(self, gw, backend="auth"):
        """Every thread of `gw` has seen the fake service's stream (polled every 250 ms)."""
        def seen():
            text = http("GET", "/metrics", base=gw.ops_url).body.decode()
            lines = [l for l in text.splitlines()
                     if l.startswith("adi_gateway_backend_stream_up{")
                     and f'backend="{backend}"' in l]
            return lines and all(l.endswith(" 1") for l in lines)
        wait_for(seen, "the gateway threads to see svc:{%s}:req" % backend)


class Proxying(PrivateTestCase):
    def test_envelope_and_success(self):
        gw = self.gateway()
        svc = self.fake()
        self.wait_stream_seen(gw)
        before = time.time() * 1000
        call = Call(gw, "POST", PING + "?q=a+b&n=%C3%A9", body={"a": 1, "b": [True, None]},
                    headers={"X-Request-ID": "e2e-env-1"})
        _, envelope = svc.take()
        self.assertEqual(envelope["v"], 1)
        self.assertEqual(envelope["op"], "sys.health")
        self.assertEqual(envelope["trace_id"], "e2e-env-1")
        self.assertRegex(envelope["reply_to"], r"^gw:\{.+-[0-9]+\}:rep$")
        self.assertEqual(len(envelope["id"]), 36)
        self.assertIsNone(envelope.get("principal"))
        self.assertEqual(unpack_raw_field(envelope, "params"), {"q": "a b", "n": "\u00e9"})
        self.assertEqual(unpack_raw_field(envelope, "body"), {"a": 1, "b": [True, None]})
        self.assertGreaterEqual(envelope["deadline_ms"], before + 4000)
        self.assertLessEqual(envelope["deadline_ms"], time.time() * 1000 + 5000)
        svc.reply(envelope, 201, body={"ok": True, "items": [1, "two"]})
        r = call.wait()
        self.assertEqual(r.status, 201)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(r.header("x-request-id"), "e2e-env-1")
        self.assertEqual(r.json(), {"ok": True, "items": [1, "two"]})

    def test_idempotency_key_is_the_envelope_id(self):
        gw = self.gateway()
        svc = self.fake()
        self.wait_stream_seen(gw)
        call = Call(gw, "POST", PING, body={}, headers={"Idempotency-Key": "order-77"})
        _, envelope = svc.take()
        self.assertEqual(envelope["id"], "order-77")
        svc.reply(envelope, 204)
        r = call.wait()
        self.assertEqual(r.status, 204)
        self.assertEqual(r.body, b"")
        # The gateway answers only once the stored response is acknowledged by Redis, so a replay
        # sent right after the answer (whichever gateway thread takes it) is replayed, never 409.
        replay = http("POST", PING, body={}, headers={"Idempotency-Key": "order-77"},
                      base=gw.url)
        self.assertEqual(replay.status, 204)
        self.assertEqual(replay.header("idempotent-replayed"), "true")

    def test_error_replies(self):
        gw = self.gateway()
        svc = self.fake()
        self.wait_stream_seen(gw)
        cases = [
            (400, {"code": "invalid", "message": "Invalid input.", "fields": [
                {"field": "email", "message": "This field is required."},
                {"field": "password", "message": "Too short."},
                {"field": "email", "message": "Enter a valid email address."}]},
             {"email": ["This field is required.", "Enter a valid email address."],
              "password": ["Too short."]}, {}),
            (400, {"code": "invalid", "message": "The e-mail is taken."},
             {"non_field_errors": ["The e-mail is taken."]}, {}),
            (404, {"code": "not_found", "message": "Not found."}, {"detail": "Not found."}, {}),
            (409, {"code": "conflict", "message": "Already there."},
             {"detail": "Already there."}, {}),
            (401, {"code": "unauthenticated",
                   "message": "No active account found with the given credentials"},
             {"detail": "No active account found with the given credentials"},
             {"www-authenticate": 'Bearer realm="api"'}),
            (500, {"code": "server_error", "message": "pq: relation does not exist"},
             {"error": {"code": "server_error",
                        "message": "An unexpected error occurred. Please try again later."}}, {}),
            (503, {"code": "unavailable", "message": "The KMS is unavailable."},
             {"error": {"code": "unavailable", "message": "The KMS is unavailable."}},
             {"retry-after": "1"}),
        ]
        for status, error, expected, headers in cases:
            with self.subTest(status=status, expected=expected):
                call = Call(gw, "POST", PING, body={})
                _, envelope = svc.take()
                svc.reply(envelope, status, error=error)
                r = call.wait()
                self.assertEqual(r.status, status)
                self.assertEqual(r.json(), expected)
                for k, v in headers.items():
                    self.assertEqual(r.header(k), v)

    def test_deadline_504_and_late_reply(self):
        gw = self.gateway(REQUEST_TIMEOUT_MS=300)
        svc = self.fake()
        self.wait_stream_seen(gw)
        call = Call(gw, "POST", PING, body={})
        _, envelope = svc.take()
        r = call.wait()
        self.assertEqual(r.status, 504)
        self.assertEqual(r.json(), {"error": {"code": "timeout",
                                              "message": "The service did not answer in time."}})
        svc.reply(envelope, 200, body={"late": True})  # nobody waits: dropped
        self.assertEqual(http("GET", "/api/timezone/", base=gw.url).status, 200)

    def test_missing_stream_503(self):
        gw = self.gateway()
        r = http("POST", PING, body={}, base=gw.url)
        self.assertEqual(r.status, 503)
        self.assertEqual(r.header("retry-after"), "1")
        self.assertEqual(r.json()["error"]["code"], "unavailable")
        h = http("GET", "/api/health/", base=gw.url)
        self.assertEqual(h.status, 503)
        self.assertEqual(h.json()["status"], "degraded")
        self.assertEqual(set(h.json()["services"]), {"auth", "tenant", "vault", "task-runner"})

    def test_anonymous_idempotency_keys_scoped_by_address(self):
        # Two anonymous clients (127.0.0.1 and 127.0.0.2, both loopback) pick the same key for
        # a public mutating route: each request reaches the service with its own address, each
        # client gets its own reply and later its own replay; the other's body under the key is
        # a reuse (422), never the other's stored reply.
        gw = self.gateway()
        svc = FakeService(self.redis.port, "tenant")
        self.fakes.append(svc)
        self.wait_stream_seen(gw, "tenant")
        key = "signup-" + os.urandom(4).hex()
        clients = ("127.0.0.1", "127.0.0.2")
        bodies = {src: {"name": f"t{i}", "admin_email": f"a{i}@e2e.example",
                        "admin_password": "e2e-password-1"} for i, src in enumerate(clients)}
        replies = {src: {"id": f"tenant-{i}", "name": f"t{i}"} for i, src in enumerate(clients)}
        for src in clients:
            call = Call(gw, "POST", "/api/tenants/", body=bodies[src],
                        headers={"Idempotency-Key": key}, source=src)
            _, envelope = svc.take()
            self.assertEqual(envelope["op"], "tenant.signup")
            self.assertEqual(envelope["id"], key)
            self.assertEqual(envelope["client_ip"], src)
            self.assertIsNone(envelope.get("principal"))
            svc.reply(envelope, 201, body=replies[src])
            r = call.wait()
            self.assertEqual(r.status, 201, (src, r))
            self.assertIsNone(r.header("idempotent-replayed"))
            self.assertEqual(r.json(), replies[src])
        for src in reversed(clients):
            r = http("POST", "/api/tenants/", body=bodies[src], headers={"Idempotency-Key": key},
                     base=gw.url, source=src)
            self.assertEqual(r.status, 201, (src, r))
            self.assertEqual(r.header("idempotent-replayed"), "true")
            self.assertEqual(r.json(), replies[src])
        r = http("POST", "/api/tenants/", body=bodies[clients[0]],
                 headers={"Idempotency-Key": key}, base=gw.url, source=clients[1])
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json(), {
            "detail": "This Idempotency-Key was already used with a different request."})

    def test_pending_bound(self):
        gw = self.gateway(GATEWAY_THREADS=1, GATEWAY_MAX_PENDING=1)
        svc = self.fake()
        self.wait_stream_seen(gw)
        call = Call(gw, "POST", PING, body={})
        _, envelope = svc.take()
        r = http("POST", PING, body={}, base=gw.url)
        self.assertEqual(r.status, 503)
        self.assertEqual(r.header("retry-after"), "1")
        svc.reply(envelope, 200, body={})
        self.assertEqual(call.wait().status, 200)


class Settings(PrivateTestCase):
    def test_time_zone_and_version(self):
        gw = self.gateway(TIME_ZONE="Europe/Paris", APP_VERSION="9.9.9-test")
        r = http("GET", "/api/timezone/", base=gw.url)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"timezone": "Europe/Paris"})
        r = http("GET", "/api/health/version/", base=gw.url)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"version": "9.9.9-test"})

    def test_threads_default_one_per_cpu(self):
        # GATEWAY_THREADS unset or 0: one event loop per online CPU (at most 64), logged, and
        # that many threads really serve (each polls the backlogs under its own thread label).
        cpus = min(max(os.sysconf("SC_NPROCESSORS_ONLN"), 1), 64)
        for setting in (None, 0):
            with self.subTest(GATEWAY_THREADS=setting):
                gw = self.gateway(GATEWAY_THREADS=setting)
                started = gw.log_events("gw.started")
                self.assertTrue(started and f", {cpus} threads," in started[0]["msg"], started)
                auto = gw.log_events("gw.threads")
                self.assertEqual(len(auto), 1, gw.read_log())
                self.assertIn(f"{cpus} event-loop threads", auto[0]["msg"])
                effective = gw.log_events("config.effective")[0]["msg"]
                self.assertIn(f"GATEWAY_THREADS={cpus} ", effective)

                def threads():
                    series = gw.metric_series("adi_gateway_backend_stream_up")
                    return {re.search(r'thread="(\d+)"', k).group(1) for k in series}
                wait_for(lambda: len(threads()) == cpus, f"{cpus} threads polling")
                self.assertEqual(gw.stop(), 0)
        gw = self.gateway(GATEWAY_THREADS=1)
        self.assertEqual(gw.log_events("gw.threads"), [])
        self.assertIn(", 1 threads,", gw.log_events("gw.started")[0]["msg"])


class Trimming(PrivateTestCase):
    def test_request_stream_stays_bounded(self):
        # The gateway XADDs every envelope with MAXLEN ~ STREAM_MAXLEN. Redis trims whole nodes
        # (100 entries each by default), so the length stays between the cap and about a node
        # more: after 1000 requests with a cap of 100 it is far below 1000.
        maxlen, n = 100, 1000
        gw = self.gateway(STREAM_MAXLEN=maxlen)
        svc = self.fake()
        self.wait_stream_seen(gw)
        stop = threading.Event()

        def serve():  # answers every request at once
            with Redis(port=self.redis.port) as r:
                while not stop.is_set():
                    rep = r.command("XREADGROUP", "GROUP", "auth", "e2e", "COUNT", 64,
                                    "BLOCK", 100, "STREAMS", svc.stream, ">")
                    for entry_id, fields in (rep[0][1] if rep else []):
                        env_ = mp_unpack(dict(zip(fields[0::2], fields[1::2]))[b"m"])
                        r.command("XADD", env_["reply_to"], "MAXLEN", "~", 1000, "*", "m",
                                  mp_pack({"v": 1, "id": env_["id"], "status": 204}))
                        r.command("XACK", svc.stream, "auth", entry_id)
        server = threading.Thread(target=serve)
        server.start()
        try:
            statuses = {}
            for _ in range(n):
                st = http("POST", PING, body={}, base=gw.url).status
                statuses[st] = statuses.get(st, 0) + 1
        finally:
            stop.set()
            server.join(timeout=60)
        self.assertEqual(statuses, {204: n})
        with Redis(port=self.redis.port) as r:
            info = r.command("XINFO", "STREAM", svc.stream)
            info = {info[i].decode(): info[i + 1] for i in range(0, len(info), 2)}
            self.assertEqual(info["entries-added"], n)
            length = r.command("XLEN", svc.stream)
        self.assertGreaterEqual(length, maxlen)
        self.assertLess(length, maxlen + 200)


class ServiceRestart(PrivateTestCase):
    def test_killed_service_degrades_health_and_recovers(self):
        # A private stack: a real adi-tenant on the private Redis with a database of its own,
        # auth, vault and task-runner played by the test (health only). The tenant process is
        # killed (a crash, not a pause): health turns 503 "degraded" naming it, its route times
        # out; a new process takes over the same stream and both work again.
        gw = self.gateway(REQUEST_TIMEOUT_MS=2000)
        db = PrivateDatabase()
        fakes, services = [], []
        try:
            fakes += [HealthFake(self.redis.port, n) for n in ("auth", "vault", "task-runner")]
            services.append(PrivateService(self.dir, "tenant", self.redis.url,
                                           db.url("adi_tenant")))
            tid = str(uuid.uuid4())
            db.sql(f"INSERT INTO tenant.tenants (id, name) VALUES ('{tid}', 'Restart e2e')")
            now = int(time.time())
            token = jwt.encode({"token_type": "access", "exp": now + 600, "iat": now,
                                "jti": uuid.uuid4().hex, "user_id": str(uuid.uuid4()),
                                "tenant_id": tid, "roles": ["VIEWER"]},
                               env("JWT_SIGNING_KEY"), algorithm="HS256")
            auth = {"Authorization": f"Bearer {token}"}
            others = ("auth", "vault", "task-runner")

            def health(status):
                r = http("GET", "/api/health/", base=gw.url)
                return r if r.status == status else None

            def tenant_served():
                r = http("GET", f"/api/tenants/{tid}/", headers=auth, base=gw.url)
                return None if r.status in (503, 504) else r

            def working():
                h = wait_for(lambda: health(200), "health 200 with every service ok")
                self.assertEqual(h.json()["status"], "ok")
                self.assertEqual(h.json()["services"]["tenant"]["status"], "ok")
                r = wait_for(tenant_served, "GET /api/tenants/{id}/ to be served")
                self.assertEqual(r.status, 200, r)
                self.assertEqual((r.json()["id"], r.json()["name"]), (tid, "Restart e2e"))

            working()
            services[0].kill()

            def degraded():
                h = health(503)
                if h is None:
                    return None
                body = h.json()
                # A loaded machine may miss the fan-out's short deadline for another service.
                return body if all(body["services"][o]["status"] == "ok" for o in others) else None
            body = wait_for(degraded, "health 503 naming the tenant service only")
            self.assertEqual(body["status"], "degraded")
            self.assertEqual(body["services"]["tenant"], {"status": "unavailable"})
            r = http("GET", f"/api/tenants/{tid}/", headers=auth, base=gw.url)
            self.assertEqual(r.status, 504, r)

            services.append(PrivateService(self.dir, "tenant", self.redis.url,
                                           db.url("adi_tenant")))
            working()
            self.assertEqual(services[1].stop(), 0)
        finally:
            for svc in services:
                svc.stop()
            for f in fakes:
                f.stop()
            db.drop()
        reports = [m for svc in services for m in svc.sanitizer_report()]
        self.assertEqual(reports, [], "sanitizer report in a private service's log")


class Cors(PrivateTestCase):
    def test_listed_and_unlisted_origins(self):
        gw = self.gateway(CORS_ALLOWED_ORIGINS=f"https://app.example.com, {ORIGIN}")
        r = http("OPTIONS", PING, base=gw.url, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, idempotency-key"})
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("access-control-allow-origin"), ORIGIN)
        self.assertIn("POST", r.header("access-control-allow-methods"))
        self.assertEqual(r.header("access-control-allow-headers"),
                         "Authorization, Content-Type, Idempotency-Key, X-Request-ID")
        self.assertTrue(int(r.header("access-control-max-age")) > 0)
        self.assertEqual(r.header("vary"), "Origin")

        r = http("OPTIONS", PING, base=gw.url, headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 204)
        for h in ("access-control-allow-origin", "access-control-allow-methods",
                  "access-control-allow-headers"):
            self.assertIsNone(r.header(h))

        r = http("GET", "/api/timezone/", base=gw.url, headers={"Origin": ORIGIN})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("access-control-allow-origin"), ORIGIN)
        self.assertEqual(r.header("vary"), "Origin")
        r = http("GET", "/api/nope/", base=gw.url, headers={"Origin": ORIGIN})
        self.assertEqual(r.status, 404)
        self.assertEqual(r.header("access-control-allow-origin"), ORIGIN)
        r = http("GET", "/api/timezone/", base=gw.url, headers={"Origin": "https://evil.example"})
        self.assertIsNone(r.header("access-control-allow-origin"))


class Bodies(PrivateTestCase):
    def test_too_large(self):
        gw = self.gateway(MAX_BODY_BYTES=1024)
        expected = {"detail": "Request body exceeds 1024 bytes."}
        r = parse_raw_response(raw_request(
            b"POST /api/health/ping/ HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1025\r\n\r\n", base=gw.url))
        self.assertEqual(r.status, 413)
        self.assertEqual(json.loads(r.body), expected)
        self.assertIsNotNone(r.header("x-request-id"))
        # Chunked: no length up front, the streamed size counts.
        payload = b'{"pad": "' + b"x" * 1100 + b'"}'
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)
        r = parse_raw_response(raw_request(
            b"POST /api/health/ping/ HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunked, base=gw.url))
        self.assertEqual(r.status, 413)
        self.assertEqual(json.loads(r.body), expected)
        # At the limit it is read (and then refused for the missing stream, not for its size).
        body = b'{"p": "' + b"y" * (1024 - 9) + b'"}'
        self.assertEqual(len(body), 1024)
        r = http("POST", PING, body=body, headers={"Content-Type": "application/json"},
                 base=gw.url)
        self.assertEqual(r.status, 503)


class Lifecycle(PrivateTestCase):
    def test_redis_restart(self):
        gw = self.gateway()
        svc = self.fake()
        self.wait_stream_seen(gw)
        call = Call(gw, "POST", PING, body={})
        _, envelope = svc.take()
        svc.reply(envelope, 200, body={"n": 1})
        self.assertEqual(call.wait().status, 200)
        svc.close()
        self.fakes.remove(svc)

        before = gw.metric_series("adi_gateway_redis_failures_total")
        self.redis.stop()
        wait_for(lambda: not gw.ready(), "/readyz to report Redis down")

        # Every connection of every thread (2 threads x command, reply and ev:auth) notices the
        # loss and fails at least one reconnect (refused) before Redis comes back, so the
        # reconnect path is really exercised.
        def retried():
            now = gw.metric_series("adi_gateway_redis_failures_total")
            return len(now) == 6 and all(v >= before.get(k, 0) + 2 for k, v in now.items())
        wait_for(retried, "failed reconnect attempts on every connection")
        r = http("POST", PING, body={}, base=gw.url)
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["error"]["code"], "unavailable")
        self.assertEqual(http("GET", "/api/timezone/", base=gw.url).status, 200)
        self.assertEqual(http("GET", "/api/health/", base=gw.url).status, 503)

        self.redis.start()  # same port, empty data set
        wait_for(gw.ready, "the gateway to reconnect")
        svc = self.fake()
        self.wait_stream_seen(gw)
        call = Call(gw, "POST", PING, body={})
        _, envelope = svc.take()
        svc.reply(envelope, 200, body={"n": 2})
        r = call.wait()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"n": 2})
        self.assertTrue(gw.log_events("gw.redis_down"))
        self.assertTrue(gw.log_events("gw.redis_up"))

    def test_graceful_shutdown(self):
        gw = self.gateway()
        svc = self.fake()
        self.wait_stream_seen(gw)
        call = Call(gw, "POST", PING, body={})
        _, envelope = svc.take()
        gw.proc.send_signal(15)

        def refused():
            try:
                socket.create_connection(("127.0.0.1", gw.port), timeout=2).close()
                return False
            except (ConnectionRefusedError, ConnectionResetError):
                # Reset: the connection was queued when the listener closed; also not accepted.
                return True
        wait_for(refused, "the gateway to stop accepting connections")
        self.assertFalse(gw.ready())
        svc.reply(envelope, 200, body={"drained": True})
        r = call.wait()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"drained": True})
        self.assertEqual(gw.proc.wait(timeout=30), 0)
        self.assertTrue(gw.log_events("gw.stopped"))
        with Redis(port=self.redis.port) as r:
            self.assertEqual(r.command("KEYS", "gw:{*}:rep"), [])

    def test_shutdown_ends_unanswered_request_at_its_deadline(self):
        gw = self.gateway(REQUEST_TIMEOUT_MS=800)
        svc = self.fake()
        self.wait_stream_seen(gw)
        call = Call(gw, "POST", PING, body={})
        svc.take()  # and never answer
        gw.proc.send_signal(15)
        r = call.wait()
        self.assertEqual(r.status, 504)
        self.assertEqual(gw.proc.wait(timeout=30), 0)
        self.assertTrue(gw.log_events("gw.stopped"))

    def test_config_table_and_errors(self):
        binary = os.path.join(env("ADI_BIN_DIR"), "adi-gateway")
        out = subprocess.run([binary, "--config-table"], capture_output=True, text=True,
                             timeout=30)
        self.assertEqual(out.returncode, 0)
        for var in ("HTTP_PORT", "GATEWAY_THREADS", "REDIS_URL", "CORS_ALLOWED_ORIGINS",
                    "MAX_BODY_BYTES", "REQUEST_TIMEOUT_MS", "BACKLOG_LIMIT"):
            self.assertIn(f"| `{var}` |", out.stdout)
        bad = dict(os.environ, BACKLOG_LIMIT="many", CORS_ALLOWED_ORIGINS="*",
                   REDIS_URL="http://:hunter2@x")
        out = subprocess.run([binary], env=bad, capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2)
        self.assertIn("BACKLOG_LIMIT", out.stderr)
        bad.pop("BACKLOG_LIMIT")
        out = subprocess.run([binary], env=bad, capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2)
        self.assertIn("CORS_ALLOWED_ORIGINS", out.stderr)
        self.assertIn("REDIS_URL", out.stderr)
        self.assertNotIn("hunter2", out.stderr + out.stdout)


if __name__ == "__main__":
    unittest.main()
