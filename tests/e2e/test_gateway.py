# SPDX-License-Identifier: MIT
"""The gateway against the running suite (GATEWAY_URL): local routes, the health aggregate, the
routing errors (404 / 405 / trailing slash), body errors (400 / 413 / 415), X-Request-ID, CORS
refusal and Idempotency-Key replay and reuse. The proxied route used is POST /api/health/ping/
(sys.health on the auth service, harmless), the one proxied route that exists before the business
routes do.
"""
import json
import os
import re
import unittest
import uuid

from gw_e2e import (effective_config, env, http, parse_raw_response, ping_ok, raw_request,
                    wait_for)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SERVICES = ["auth", "tenant", "vault", "task-runner"]
PING = "/api/health/ping/"



class LocalRoutes(unittest.TestCase):
    def test_version(self):
        r = http("GET", "/api/health/version/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(r.json(), {"version": effective_config()["APP_VERSION"]})

    def test_timezone(self):
        r = http("GET", "/api/timezone/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"timezone": effective_config()["TIME_ZONE"]})

    def test_health_all_ok(self):
        # The fan-out has a short deadline (1 s): on a loaded machine one round may miss it, so
        # the claim tested is "answers 200 with every service once all of them answer".
        r = wait_for(lambda: (lambda x: x if x.status == 200 else None)(
            http("GET", "/api/health/")), "GET /api/health/ to answer 200")
        body = r.json()
        self.assertEqual(body["status"], "ok")
        self.assertEqual(sorted(body["services"]), sorted(SERVICES))
        for svc in SERVICES:
            self.assertEqual(body["services"][svc]["status"], "ok", body)
            self.assertIn("version", body["services"][svc])

    def test_head_and_options(self):
        r = http("HEAD", "/api/timezone/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        r = http("OPTIONS", "/api/timezone/")
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("allow"), "GET, HEAD, OPTIONS")


class Routing(unittest.TestCase):
    def test_unknown_path_404(self):
        r = http("GET", "/api/does-not-exist/?token=secret")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(r.json(), {"error": {
            "code": "not_found", "message": "The requested resource was not found.",
            "path": "/api/does-not-exist/"}})
        self.assertEqual(http("GET", "/").status, 404)
        self.assertEqual(http("GET", "/api//health/").status, 404)

    def test_wrong_method_405(self):
        r = http("DELETE", "/api/timezone/")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.json(), {"detail": 'Method "DELETE" not allowed.'})
        self.assertEqual(r.header("allow"), "GET, HEAD, OPTIONS")
        r = http("GET", PING)
        self.assertEqual(r.status, 405)
        self.assertEqual(r.json(), {"detail": 'Method "GET" not allowed.'})
        self.assertEqual(r.header("allow"), "POST, OPTIONS")

    def test_trailing_slash_optional(self):
        for path in ("/api/timezone", "/api/health/version"):
            without, with_slash = http("GET", path), http("GET", path + "/")
            self.assertEqual(without.status, 200, path)
            self.assertEqual(without.json(), with_slash.json())
        self.assertIn("services", http("GET", "/api/health").json())
        self.assertEqual(ping_ok(PING.rstrip("/")).status, 200)


class Bodies(unittest.TestCase):
    def test_malformed_json_400(self):
        r = http("POST", PING, body='{"a": ', headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        detail = r.json()["detail"]
        self.assertTrue(detail.startswith("JSON parse error - "), detail)

    def test_not_an_object_400(self):
        for text, kind in (("[1, 2]", "list"), ('"x"', "str"), ("3", "int"), ("null", "NoneType")):
            r = http("POST", PING, body=text, headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, text)
            self.assertEqual(r.json(), {"non_field_errors": [
                f"Invalid data. Expected a dictionary, but got {kind}."]})

    def test_empty_body_is_an_object(self):
        r = ping_ok()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["service"], "auth")

    def test_unsupported_media_type_415(self):
        r = http("POST", PING, body="a=1", headers={"Content-Type": "text/plain"})
        self.assertEqual(r.status, 415)
        self.assertEqual(r.json(), {"detail": 'Unsupported media type "text/plain" in request.'})

    def test_body_too_large_413(self):
        limit = int(effective_config()["MAX_BODY_BYTES"])
        # Only the headers: the gateway must refuse on Content-Length before reading the body.
        raw = raw_request(("POST %s HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
                           "Content-Length: %d\r\nX-Request-ID: e2e-413\r\n\r\n"
                           % (PING, limit + 1)).encode())
        r = parse_raw_response(raw)
        self.assertEqual(r.status, 413)
        self.assertEqual(r.header("content-type"), "application/json")
        self.assertEqual(r.header("x-request-id"), "e2e-413")
        self.assertEqual(json.loads(r.body), {"detail": f"Request body exceeds {limit} bytes."})

    def test_large_body_within_limit(self):
        pad = "x" * (256 * 1024)
        r = ping_ok(body={"pad": pad})
        self.assertEqual(r.status, 200, r)


class RequestId(unittest.TestCase):
    def test_echoed(self):
        r = http("GET", "/api/timezone/", headers={"X-Request-ID": "e2e-req.1_A"})
        self.assertEqual(r.header("x-request-id"), "e2e-req.1_A")

    def test_generated(self):
        r = http("GET", "/api/timezone/")
        self.assertRegex(r.header("x-request-id"), UUID_RE)
        r = http("GET", "/api/nope/")
        self.assertRegex(r.header("x-request-id"), UUID_RE)

    def test_insane_value_replaced(self):
        for bad in ("has space", "x" * 129, "semi;colon"):
            r = http("GET", "/api/timezone/", headers={"X-Request-ID": bad})
            self.assertRegex(r.header("x-request-id"), UUID_RE, bad)

    def test_logged_without_query_string(self):
        rid = "e2e-log-" + uuid.uuid4().hex
        http("GET", "/api/timezone/?access_token=do-not-log", headers={"X-Request-ID": rid})
        path = os.path.join(env("ADI_LOG_DIR"), "adi-gateway.log")

        def line():
            with open(path, encoding="utf-8", errors="replace") as f:
                for text in f:
                    if rid in text:
                        return text
            return None
        text = wait_for(line, "the gw.request log line")
        entry = json.loads(text)
        self.assertEqual(entry["event"], "gw.request")
        self.assertEqual(entry["request_id"], rid)
        self.assertIn("path=/api/timezone/", entry["msg"])
        self.assertIn("status=200", entry["msg"])
        self.assertIn("duration_ms", entry)
        self.assertNotIn("do-not-log", text)


class Cors(unittest.TestCase):
    def test_preflight_from_unlisted_origin(self):
        r = http("OPTIONS", PING, headers={"Origin": "http://evil.example",
                                           "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 204)
        self.assertIsNone(r.header("access-control-allow-origin"))
        self.assertIsNone(r.header("access-control-allow-methods"))
        r = http("GET", "/api/timezone/", headers={"Origin": "http://evil.example"})
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("access-control-allow-origin"))

    def test_preflight_from_listed_origin(self):
        origins = [o for o in effective_config().get("CORS_ALLOWED_ORIGINS", "").split(",") if o]
        if not origins:
            self.skipTest("the suite's gateway has no CORS_ALLOWED_ORIGINS (covered by "
                          "test_gateway_private)")
        r = http("OPTIONS", PING, headers={"Origin": origins[0],
                                           "Access-Control-Request-Method": "POST"})
        self.assertEqual(r.status, 204)
        self.assertEqual(r.header("access-control-allow-origin"), origins[0])


class IdempotencyKey(unittest.TestCase):
    def test_replay_and_reuse(self):
        key = str(uuid.uuid4())
        first = ping_ok(body={"n": 1}, headers={"Idempotency-Key": key})
        self.assertEqual(first.status, 200, first)
        self.assertIsNone(first.header("idempotent-replayed"))
        again = http("POST", PING, body={"n": 1}, headers={"Idempotency-Key": f'"{key}"'})
        self.assertEqual(again.status, 200)
        self.assertEqual(again.body, first.body)
        self.assertEqual(again.header("idempotent-replayed"), "true")
        self.assertNotEqual(again.header("x-request-id"), first.header("x-request-id"))
        other = http("POST", PING, body={"n": 2}, headers={"Idempotency-Key": key})
        self.assertEqual(other.status, 422)
        self.assertEqual(other.json(), {
            "detail": "This Idempotency-Key was already used with a different request."})

    def test_anonymous_keys_scoped_by_client_address(self):
        # Two anonymous clients at different addresses that pick the same key for a public
        # mutating route (signup) each get a slot of their own: no 422 for the other's body, no
        # replay of the other's reply (which names the other's tenant and admin); a client's own
        # retry is its stored reply. The services scope such keys by the same address.
        key = str(uuid.uuid4())
        tag = uuid.uuid4().hex[:10]
        clients = ("127.0.0.1", "127.0.0.2")
        bodies = {src: {"name": f"Idem-{tag}-{i}", "admin_email": f"idem-{tag}-{i}@e2e.example",
                        "admin_password": "e2e-password-1"} for i, src in enumerate(clients)}

        def signup(body, src):
            # A 503/504 releases the key (the service's own record makes a retry safe).
            def once():
                r = http("POST", "/api/tenants/", body=body, headers={"Idempotency-Key": key},
                         source=src)
                return None if r.status in (503, 504) else r
            return wait_for(once, "POST /api/tenants/ to be answered")

        first = {}
        for src in clients:
            r = signup(bodies[src], src)
            self.assertEqual(r.status, 201, (src, r))
            self.assertIsNone(r.header("idempotent-replayed"))
            self.assertEqual(r.json()["name"], bodies[src]["name"])
            first[src] = r.json()
        self.assertNotEqual(first[clients[0]]["id"], first[clients[1]]["id"])
        for src in clients:
            again = signup(bodies[src], src)
            self.assertEqual(again.status, 201, (src, again))
            self.assertEqual(again.header("idempotent-replayed"), "true")
            self.assertEqual(again.json(), first[src])
        # The other client's body under the same key: a reuse of this client's own key (422),
        # never the other client's stored reply.
        cross = signup(bodies[clients[0]], clients[1])
        self.assertEqual(cross.status, 422, cross)

    def test_invalid_key_400(self):
        r = http("POST", PING, body={}, headers={"Idempotency-Key": "has space"})
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json(), {"detail": "Invalid Idempotency-Key header."})


if __name__ == "__main__":
    unittest.main()
