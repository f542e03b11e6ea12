# SPDX-License-Identifier: MIT
"""GET /api/me/ as the gateway's aggregate against the running suite: the user from auth (auth.me)
and the tenant record from the tenant service (tenant.get) in one reply {user, tenant_id, tenant}.
A tenant made through signup comes back with the signup's id, name and created_at; a superuser of
no tenant gets "tenant": null, and with X-Tenant-Id the tenant it names; an unknown tenant is null.
The failure paths (auth.me's refusal, a failing or silent tenant service) are played by fake
services in test_gateway_auth.py.
"""
import json
import os
import unittest
import uuid

from gw_e2e import env, http, wait_for
from test_tenant import PASSWORD, USER_KEYS, bearer, login, signup, superuser_access


def setUpModule():
    # Each gateway thread learns on its own poll that svc:{tenant}:req exists.
    wait_for(lambda: all(http("POST", "/api/users/accept-invite/", {}).status == 400
                         for _ in range(4)), "the gateway to route to the tenant service")


class Me(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        r, body = signup()
        assert r.status == 201, r
        cls.tenant = r.json()
        cls.email = body["admin_email"]
        cls.access = login(cls.email, PASSWORD)["access"]
        cls.root = superuser_access()

    def test_user_and_tenant(self):
        r = http("GET", "/api/me/", headers=bearer(self.access))
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(set(body), {"user", "tenant_id", "tenant"})
        self.assertEqual(set(body["user"]), USER_KEYS)
        self.assertEqual(body["user"]["id"], self.tenant["admin_user_id"])
        self.assertEqual(body["user"]["email"], self.email)
        self.assertEqual(body["user"]["roles"], ["ADMIN"])
        self.assertEqual(body["tenant_id"], self.tenant["id"])
        self.assertEqual(body["tenant"], {k: self.tenant[k] for k in ("id", "name", "created_at")})

    def test_request_id_traced_through_every_hop(self):
        # One grep for the client's X-Request-ID finds the gateway's line and the lines of both
        # services the aggregate called.
        rid = "trace-" + uuid.uuid4().hex
        r = http("GET", "/api/me/", headers={**bearer(self.access), "X-Request-ID": rid})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Request-ID"), rid)

        def traced(binary):
            path = os.path.join(env("ADI_LOG_DIR"), binary + ".log")
            with open(path, encoding="utf-8", errors="replace") as f:
                return [json.loads(line) for line in f if rid in line]

        for binary, op in (("adi-gateway", None), ("adi-auth", "auth.me"),
                           ("adi-tenant", "tenant.get")):
            wait_for(lambda: traced(binary), f"a line of {binary} with the request's trace_id")
            lines = traced(binary)
            self.assertTrue(all(line.get("trace_id") == rid for line in lines), lines)
            if op is not None:
                self.assertIn(op, [line.get("op") for line in lines])

    def test_superuser_without_tenant(self):
        r = http("GET", "/api/me/", headers=bearer(self.root))
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json()["tenant_id"])
        self.assertIsNone(r.json()["tenant"])
        self.assertIsNone(r.json()["user"]["tenant"])

    def test_superuser_tenant_header(self):
        r = http("GET", "/api/me/", headers={**bearer(self.root), "X-Tenant-Id": self.tenant["id"]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["tenant_id"], self.tenant["id"])
        self.assertEqual(r.json()["tenant"]["name"], self.tenant["name"])
        unknown = str(uuid.uuid4())
        r = http("GET", "/api/me/", headers={**bearer(self.root), "X-Tenant-Id": unknown})
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json()["tenant_id"], r.json()["tenant"]), (unknown, None))
        r = http("GET", "/api/me/", headers={**bearer(self.root), "X-Tenant-Id": "nope"})
        self.assertEqual(r.status, 400, r)
        self.assertIn("tenant_id", r.json())

    def test_plain_user_header_ignored(self):
        other = str(uuid.uuid4())
        r = http("GET", "/api/me/", headers={**bearer(self.access), "X-Tenant-Id": other})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["tenant_id"], self.tenant["id"])
        self.assertEqual(r.json()["tenant"]["id"], self.tenant["id"])

    def test_no_credentials(self):
        r = http("GET", "/api/me/")
        self.assertEqual(r.status, 401, r)


if __name__ == "__main__":
    unittest.main()
