# SPDX-License-Identifier: MIT
"""The gateway when a backend stops answering (the suite's auth service frozen with SIGSTOP, always
resumed with SIGCONT): 504 at the route's deadline, health "degraded" naming the silent service and
back to "ok" after it resumes; an Idempotency-Key still running answers 409 and is released after
the 504; and load shedding: a backlog above BACKLOG_LIMIT (filled with already-expired requests
that the service acknowledges unexecuted once it resumes) answers 503 with Retry-After.
"""
import hashlib
import threading
import unittest
import uuid

from gw_e2e import (Redis, effective_config, expired_envelope, gateway_backlogs, group_info,
                    health_of, http, paused, ping_ok, wait_for)

PING = "/api/health/ping/"
SVC = "auth"
STREAM = "svc:{auth}:req"
TIMEOUT_BODY = {"error": {"code": "timeout", "message": "The service did not answer in time."}}
LIMIT = int(effective_config()["BACKLOG_LIMIT"])


def wait_healthy():
    """Auth answers and every gateway thread has seen its backlog empty (each sheds on its own)."""
    wait_for(lambda: health_of(SVC) == (200, "ok"), "the suite's health to be ok again")
    wait_for(lambda: (lambda v: v and all(x == 0 for x in v))(gateway_backlogs(SVC)),
             "every gateway thread to see an empty backlog")


class Faults(unittest.TestCase):
    def setUp(self):
        wait_healthy()

    def tearDown(self):
        # Leave the suite as found: auth answering and its backlog drained.
        wait_healthy()

    def test_stopped_service_times_out_and_recovers(self):
        with paused(SVC):
            r = http("POST", PING, body={})
            self.assertEqual(r.status, 504, r)
            self.assertEqual(r.json(), TIMEOUT_BODY)
            self.assertIsNotNone(r.header("x-request-id"))
            # Only auth is silent: the others answer (a loaded machine may need another round
            # to get all three within the fan-out's 1 s deadline).
            def degraded_naming_auth():
                h = http("GET", "/api/health/")
                body = h.json()
                others_ok = all(body["services"][o]["status"] == "ok"
                                for o in ("tenant", "vault", "task-runner"))
                return (h, body) if h.status == 503 and others_ok else None
            h, body = wait_for(degraded_naming_auth, "health to be degraded naming auth only")
            self.assertEqual(body["status"], "degraded")
            self.assertEqual(body["services"][SVC], {"status": "unavailable"})
        wait_healthy()
        self.assertEqual(ping_ok(body={}).status, 200)

    def test_idempotency_key_in_flight_409(self):
        key = "e2e-" + uuid.uuid4().hex
        # An anonymous caller's key is scoped by its address (the suite's clients: 127.0.0.1).
        redis_key = "gw:{idem}:" + hashlib.sha256((key + "\nanon/127.0.0.1").encode()).hexdigest()
        results = {}

        def first():
            results["first"] = http("POST", PING, body={"k": 1}, headers={"Idempotency-Key": key})

        with Redis() as r, paused(SVC):
            t = threading.Thread(target=first)
            t.start()
            try:
                wait_for(lambda: r.command("EXISTS", redis_key) == 1 or "first" in results,
                         "the key to be locked")
                self.assertNotIn("first", results, "the first request ended too early")
                busy = http("POST", PING, body={"k": 1}, headers={"Idempotency-Key": key})
                self.assertEqual(busy.status, 409, busy)
                self.assertEqual(busy.json(), {
                    "detail": "A request with this Idempotency-Key is still being processed."})
            finally:
                t.join()
            self.assertEqual(results["first"].status, 504, results["first"])
            # A 5xx is not stored: the key is free for a retry.
            wait_for(lambda: r.command("EXISTS", redis_key) == 0, "the key to be released")
        wait_healthy()
        retry = ping_ok(body={"k": 1}, headers={"Idempotency-Key": key})
        self.assertEqual(retry.status, 200, retry)

    def test_backlog_over_limit_sheds_load(self):
        with Redis() as r:
            with paused(SVC):
                for n in range(LIMIT + 10):
                    r.command("XADD", STREAM, "*", "m", expired_envelope(n))
                # Each gateway thread polls the backlogs every 250 ms; once all have seen this
                # one, every request to the service is shed at once.
                wait_for(lambda: (lambda v: v and all(x > LIMIT for x in v))(
                    gateway_backlogs(SVC)), "every gateway thread to see the backlog")
                for _ in range(4):
                    resp = http("POST", PING, body={})
                    self.assertEqual(resp.status, 503, resp)
                    self.assertEqual(resp.header("retry-after"), "1")
                    self.assertEqual(resp.json(), {"error": {
                        "code": "unavailable",
                        "message": "The service is overloaded. Please try again later."}})
                # Local routes are not shed.
                self.assertEqual(http("GET", "/api/timezone/").status, 200)

            def drained():
                g = group_info(r, STREAM, SVC)
                return g is not None and g["pending"] == 0 and g.get("lag") in (0, None)
            wait_for(drained, "the auth service to work off its backlog")
        wait_healthy()
        self.assertEqual(ping_ok(body={}).status, 200)

if __name__ == "__main__":
    unittest.main()
