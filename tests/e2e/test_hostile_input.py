# SPDX-License-Identifier: MIT
"""Hostile HTTP input against the suite's real gateway (issue 8, item 2): every case gets a clear
4xx (or, where h2o decides before the gateway sees a request, h2o's own 400 or a closed
connection), the gateway keeps serving other clients, and its memory stays bounded. The suite's
stop (harness.suite.stop) fails on any sanitizer report, so a crash or a leak here fails too.

- huge heads: more headers than h2o takes (H2O_MAX_HEADERS, 100) -> h2o's 400; a head larger than
  the gateway's GW_HEAD_MAX (64 KiB) -> 431 {"detail"}; a head beyond h2o's H2O_MAX_REQLEN
  (8 KiB + 100 * 4 KiB) -> h2o's 400 and the connection closed;
- slowloris: connections that trickle a header byte at a time, or send nothing, are closed at
  h2o's request-head timeout while a fresh client is served;
- JSON bodies (gateway-side, before anything reaches a service): nesting beyond 32 levels (and
  far beyond jansson's own 2048), invalid UTF-8 (raw bytes, overlong forms, surrogates, in keys),
  duplicate keys (also spelled with escapes), numbers out of range (int64 +- 1, 1e999, 100 000
  digits), NaN / Infinity -> 400 {"detail": "JSON parse error - ..."}; the edge values that are in
  range are accepted; invalid UTF-8 in the query string -> 400;
- 10 000 concurrent connections (RLIMIT_NOFILE raised): some idle, some with a partial head, some
  with a partial body; /api/health/ still answers a fresh client; the gateway's RSS growth (its
  VmHWM, the peak, against VmRSS before) stays below 512 MiB; after they close it still serves.

Waits are bounded conditions (gw_e2e.wait_for, socket timeouts), never timing asserts.
"""
import json
import resource
import socket
import struct
import time
import unittest
import urllib.parse

from gw_e2e import WAIT, env, http, ping_ok, service_pid, wait_for

PING = "/api/health/ping/"
JSON = {"Content-Type": "application/json"}
H2O_MAX_REQLEN = 8192 + 4096 * 100  # h2o.h: requests with a longer head get h2o's 400
GW_HEAD_MAX = 64 * 1024  # services/gateway/gw.h
CONNECTIONS = 10000
RSS_GROWTH_MAX = 512 * 1024 * 1024


def address():
    u = urllib.parse.urlsplit(env("GATEWAY_URL"))
    return u.hostname, u.port


def connect(timeout=WAIT):
    s = socket.create_connection(address(), timeout=timeout)
    return s


def reset_close(s):
    """Closes with RST (SO_LINGER 0): no TIME_WAIT left behind for 10 000 sockets."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def read_all(s):
    """Everything the server sends until it closes (or resets) the connection."""
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out


def status_of(raw):
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.") else None


def serving():
    """A fresh client is answered on a local route."""
    r = http("GET", "/api/timezone/")
    return r.status == 200


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in f)}


def kib(value):
    return int(value.split()[0]) * 1024


class Heads(unittest.TestCase):
    def exchange(self, data):
        with connect() as s:
            s.sendall(data)
            return read_all(s)

    def test_too_many_headers_400_by_h2o(self):
        head = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
        raw = self.exchange(b"GET /api/timezone/ HTTP/1.1\r\nHost: e2e\r\n" + head + b"\r\n")
        self.assertEqual(status_of(raw), 400, raw[:200])
        self.assertTrue(serving())

    def test_large_head_431(self):
        for name, data in [
                ("header", b"GET /api/timezone/ HTTP/1.1\r\nHost: e2e\r\nX-Big: "
                 + b"a" * (GW_HEAD_MAX + 1) + b"\r\n\r\n"),
                ("many headers", b"GET /api/timezone/ HTTP/1.1\r\nHost: e2e\r\n"
                 + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1000) for i in range(90)) + b"\r\n"),
                ("target", b"GET /api/" + b"p" * 200000 + b"/ HTTP/1.1\r\nHost: e2e\r\n\r\n"),
                ("query", b"GET /api/timezone/?" + b"q" * 100000 + b" HTTP/1.1\r\nHost: e2e\r\n"
                 b"X-Request-ID: e2e-431\r\n\r\n"),
                ("proxied", b"POST " + PING.encode() + b" HTTP/1.1\r\nHost: e2e\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 2\r\nAuthorization: Bearer "
                 + b"t" * 300000 + b"\r\n\r\n{}")]:
            with self.subTest(name):
                raw = self.exchange(data)
                self.assertEqual(status_of(raw), 431, raw[:300])
                head, _, body = raw.partition(b"\r\n\r\n")
                self.assertIn(b"content-type: application/json", head.lower())
                self.assertEqual(json.loads(body), {"detail": "Request header fields too large."})
                self.assertLess(len(raw), 1024, "the oversized head is echoed")
        # Just within the bound: served.
        r = http("GET", "/api/timezone/", headers={"X-Big": "a" * (GW_HEAD_MAX - 1024)})
        self.assertEqual(r.status, 200, r)
        self.assertTrue(serving())

    def test_head_beyond_h2o_limit(self):
        # h2o stops reading at H2O_MAX_REQLEN and answers its 400 (text) and closes. The client
        # sends no more than that, so the close cannot turn into a reset before the answer.
        data = (b"GET /api/timezone/ HTTP/1.1\r\nHost: e2e\r\nX-Big: " + b"a" * H2O_MAX_REQLEN)
        raw = self.exchange(data[:H2O_MAX_REQLEN + 100])
        self.assertEqual(status_of(raw), 400, raw[:200])
        self.assertTrue(serving())


class Slowloris(unittest.TestCase):
    def test_trickled_and_idle_connections_are_closed(self):
        idle = connect(timeout=5)
        slow = [connect(timeout=5) for _ in range(8)]
        closed = set()
        try:
            for s in slow:
                s.sendall(b"GET /api/health/ HTTP/1.1\r\nHost: e2e\r\n")
            # Trickle one header byte per connection per round (the attack's pace, not a
            # synchronisation), checking each round that a fresh client is still served, until
            # the gateway has closed every trickling connection. Bounded by WAIT * 4 (h2o's
            # request-head timeout is 10 s).
            deadline = time.monotonic() + WAIT * 4
            while len(closed) < len(slow):
                self.assertLess(time.monotonic(), deadline,
                                f"{len(slow) - len(closed)} trickling connections still open")
                for i, s in enumerate(slow):
                    if i in closed:
                        continue
                    try:
                        s.sendall(b"X")
                        s.settimeout(0.0)
                        try:
                            if s.recv(4096) == b"":
                                closed.add(i)
                        except BlockingIOError:
                            pass
                        finally:
                            s.settimeout(5)
                    except (BrokenPipeError, ConnectionResetError):
                        closed.add(i)
                self.assertTrue(serving(), "a fresh client was not served during the attack")
                time.sleep(0.5)
            # The idle one (nothing sent) is closed too: recv returns EOF within the timeout.
            idle.settimeout(WAIT * 2)
            self.assertIn(read_all(idle), (b"",), "an idle connection got an answer")
        finally:
            idle.close()
            for s in slow:
                reset_close(s)
        self.assertTrue(serving())


class JsonBodies(unittest.TestCase):
    def post(self, body, path=PING):
        return http("POST", path, body=body, headers=JSON)

    def assert_parse_error(self, body, path=PING, contains=None):
        r = self.post(body, path)
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(set(r.json()), {"detail"}, r)
        detail = r.json()["detail"]
        self.assertTrue(detail.startswith("JSON parse error - "), detail)
        if contains:
            self.assertIn(contains, detail)
        return detail

    def test_deep_nesting(self):
        for body, why in [
                (b'{"a":' + b"[" * 32 + b"]" * 32 + b"}", "nesting deeper than 32 levels"),
                (b'{"a":' * 40 + b"1" + b"}" * 40, "nesting deeper than 32 levels"),
                (b"[" * 100000, "maximum parsing depth reached"),
                (b'{"a":' * 5000 + b"1" + b"}" * 5000, "maximum parsing depth reached")]:
            with self.subTest(body[:12], n=len(body)):
                self.assert_parse_error(body, contains=why)
        # 32 levels is the bound, accepted.
        self.assertEqual(ping_ok(body=b'{"a":' + b"[" * 30 + b"]" * 30 + b"}",
                                 headers=JSON).status, 200)

    def test_invalid_utf8(self):
        for body in [b'{"a": "\xff\xfe"}', b'{"a": "\xc0\xaf"}', b'{"a": "\xed\xa0\x80"}',
                     b'{"a": "\xf4\x90\x80\x80"}', b'{"a": "caf\xe9"}', b'{"\xff": 1}',
                     b'{"a": "\\ud800"}', b'{"a": "\\udc00\\ud800"}', b"\xef\xbb\xbf{}"]:
            with self.subTest(body):
                self.assert_parse_error(body)
        # In the query string of a proxied route, too.
        r = http("POST", PING + "?a=%ff%fe", body={}, headers=JSON)
        self.assertEqual((r.status, r.json()), (400, {"detail": "Malformed query string."}), r)
        self.assertEqual(ping_ok(body='{"a": "caf\u00e9 \U0001f600"}'.encode(),
                                 headers=JSON).status, 200)

    def test_duplicate_keys(self):
        for body in [b'{"a": 1, "a": 2}', b'{"a": 1, "\\u0061": 1}',
                     b'{"x": {"b": [], "b": null}}', b'[{"k": 1, "k": 1}]']:
            with self.subTest(body):
                self.assert_parse_error(body, contains="duplicate object key")
        # On a business route the body never reaches the service (a signup would make a tenant).
        self.assert_parse_error(b'{"name": "x", "name": "y", "admin_email": "d@e2e.example",'
                                b' "admin_password": "e2e-password-1"}', path="/api/tenants/",
                                contains="duplicate object key")

    def test_numbers_out_of_range(self):
        for body, why in [(b'{"a": 9223372036854775808}', "too big integer"),
                          (b'{"a": -9223372036854775809}', "too big negative integer"),
                          (b'{"a": 1e999}', "real number overflow"),
                          (b'{"a": -1e999}', "real number overflow"),
                          (b'{"a": ' + b"9" * 100000 + b"}", "too big integer"),
                          (b'{"a": NaN}', "invalid token"),
                          (b'{"a": Infinity}', "invalid token"),
                          (b'{"a": -Infinity}', "invalid token"),
                          (b'{"a": 0x10}', None),
                          (b'{"a": 01}', None)]:
            with self.subTest(body[:40]):
                self.assert_parse_error(body, contains=why)
        for body in [b'{"a": 9223372036854775807}', b'{"a": -9223372036854775808}',
                     b'{"a": 1e308}', b'{"a": 1e-999}', b'{"a": -0.0}']:
            with self.subTest(body):
                self.assertEqual(ping_ok(body=body, headers=JSON).status, 200)
        # A business route's integer field: out of range -> a 400 on the field or on the JSON.
        r = http("POST", "/api/tasks/", body=b'{"name": "x", "args": {}, "countdown": 1e999}',
                 headers=JSON)
        self.assertIn(r.status, (400, 401), r)  # no token: 401 comes first, never a 5xx


class ManyConnections(unittest.TestCase):
    def test_10000_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = CONNECTIONS + 512
        if soft < need:
            if hard != resource.RLIM_INFINITY and hard < need:
                self.fail(f"RLIMIT_NOFILE hard limit {hard} < {need}: cannot open "
                          f"{CONNECTIONS} sockets")
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        pid = service_pid("gateway")
        before = kib(proc_status(pid)["VmRSS"])
        socks = []
        try:
            partial_head = b"GET /api/health/ HTTP/1.1\r\nHost: e2e\r\nX-Partial: "
            partial_body = (b"POST " + PING.encode() + b" HTTP/1.1\r\nHost: e2e\r\n"
                            b"Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
                            + b'{"pad": "' + b"x" * 1000)
            for i in range(CONNECTIONS):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.settimeout(WAIT)
                s.connect(address())
                if i % 10 == 1:
                    s.sendall(partial_head)
                elif i % 10 == 2:
                    s.sendall(partial_body)
            # Every socket connected (the kernel completed each handshake); the gateway, which
            # may have closed some at its head timeout meanwhile, answers a fresh client.
            health = wait_for(lambda: (lambda r: r if r.status in (200, 503) else None)(
                http("GET", "/api/health/")), "GET /api/health/ during 10 000 connections")
            self.assertIn("status", health.json())
            self.assertTrue(serving())
            during = proc_status(pid)
        finally:
            for s in socks:
                reset_close(s)
        self.assertTrue(wait_for(serving, "the gateway to serve after the connections closed"))
        self.assertEqual(wait_for(lambda: http("GET", "/api/health/").status == 200 or None,
                                  "GET /api/health/ 200 again"), True)
        peak = kib(proc_status(pid)["VmHWM"])
        growth = peak - before
        print(f"\ngateway RSS before {before >> 20} MiB, with {CONNECTIONS} connections "
              f"{kib(during['VmRSS']) >> 20} MiB, peak {peak >> 20} MiB", flush=True)
        self.assertLess(growth, RSS_GROWTH_MAX,
                        f"the gateway's RSS grew by {growth >> 20} MiB with {CONNECTIONS} "
                        "connections")


if __name__ == "__main__":
    unittest.main()
