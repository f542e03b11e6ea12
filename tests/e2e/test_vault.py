# SPDX-License-Identifier: MIT
"""The platform-credential routes through the gateway against the running suite (API.md "Platform
credentials"): CRUD with the exact shapes and status codes, tokens never in a reply, PATCH leaving
omitted fields alone and `refresh_token: null` clearing, the DRF 400 bodies (validation and
duplicates), 403 for a non-admin write, 404 for another tenant's credential or a bad id, the
audit entries credential_created|updated|deleted, vault.decrypt never routed, and no token text in
any log line of the suite.
"""
import glob
import os
import re
import unittest
import uuid

from gw_e2e import env, http, wait_for

PASSWORD = "e2e-password-1"
NOT_FOUND = {"detail": "Not found."}
NO_CREDS = {"detail": "Authentication credentials were not provided."}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?[+-]\d\d:\d\d$")
KEYS = {"id", "provider", "account_id", "expires_at", "created_at", "updated_at"}
UNIQUE = {"non_field_errors": ["The fields tenant, provider, account_id must make a unique set."]}
BASE = "/api/platform-credentials/"
# Every token this module sends carries this marker, so the logs can be searched for it.
MARK = "vaulte2etok"


def tag(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def token():
    return f"{MARK}-{uuid.uuid4().hex}"


def bearer(access):
    return {"Authorization": f"Bearer {access}"}


def tenant_admin():
    body = {"name": tag("Tenant"), "admin_email": f"{tag('admin')}@e2e.example",
            "admin_password": PASSWORD}
    r = http("POST", "/api/tenants/", body)
    assert r.status == 201, r
    r = http("POST", "/api/auth/login/", {"username": body["admin_email"], "password": PASSWORD})
    assert r.status == 200, r
    return bearer(r.json()["access"])


def viewer_of(admin_hdr):
    email = f"{tag('viewer')}@e2e.example"
    r = http("POST", "/api/users/invite/", {"email": email, "role": "VIEWER"}, headers=admin_hdr)
    assert r.status == 201, r
    r = http("POST", "/api/users/accept-invite/", {"token": r.json()["token"], "password": PASSWORD})
    assert r.status == 201, r
    r = http("POST", "/api/auth/login/", {"username": email, "password": PASSWORD})
    assert r.status == 200, r
    return bearer(r.json()["access"])


def setUpModule():
    # Each gateway thread learns a service's stream on its own poll: wait for the tenant and auth
    # routes (the vault's are waited for once a tenant exists).
    wait_for(lambda: all(http("POST", "/api/users/accept-invite/", {}).status == 400
                         and http("POST", "/api/auth/login/", {}).status == 400
                         for _ in range(4)), "the gateway to route to the tenant and auth services")


class Credentials(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = tenant_admin()
        cls.b = tenant_admin()
        cls.viewer = viewer_of(cls.a)
        # Each gateway thread learns the vault's stream on its own poll: wait for the routes.
        wait_for(lambda: all(http("GET", BASE, headers=cls.a).status == 200 for _ in range(4)),
                 "the gateway to route to the vault")

    def create(self, hdr=None, **over):
        body = {"provider": "META", "account_id": tag("act"), "access_token": token(),
                "refresh_token": token(), **over}
        return http("POST", BASE, body, headers=hdr or self.a), body

    def assert_no_token(self, r):
        self.assertNotIn(MARK, r.body.decode() if isinstance(r.body, bytes) else str(r.body))

    def test_naive_datetime_is_time_zone_local(self):
        # DRF makes a datetime without an offset aware in TIME_ZONE (America/Jamaica here).
        r, _ = self.create(expires_at="2027-06-01T12:00:00")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["expires_at"], "2027-06-01T12:00:00-05:00")
        r, _ = self.create(expires_at="2027-06-01T12:00:00.25+02:00")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.json()["expires_at"], "2027-06-01T05:00:00.250000-05:00")

    def test_crud(self):
        r, body = self.create(expires_at="2030-01-02T03:04:05Z")
        self.assertEqual(r.status, 201, r)
        self.assert_no_token(r)
        c = r.json()
        self.assertEqual(set(c), KEYS)
        self.assertEqual((c["provider"], c["account_id"]), ("META", body["account_id"]))
        self.assertRegex(c["created_at"], ISO)
        self.assertRegex(c["expires_at"], ISO)
        # Rendered in TIME_ZONE, a whole second without a fraction, as Django's isoformat().
        self.assertEqual(c["expires_at"], "2030-01-01T22:04:05-05:00")
        url = f"{BASE}{c['id']}/"

        r = http("GET", url, headers=self.viewer)
        self.assertEqual((r.status, r.json()), (200, c))
        r = http("GET", BASE, headers=self.viewer)
        self.assertEqual(r.status, 200, r)
        self.assertIn(c["id"], [x["id"] for x in r.json()])
        self.assert_no_token(r)

        # PATCH: omitted fields unchanged; refresh_token null clears (write-only: not visible).
        r = http("PATCH", url, {"account_id": body["account_id"] + "-b"}, headers=self.a)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["account_id"], body["account_id"] + "-b")
        self.assertEqual(r.json()["expires_at"], c["expires_at"])
        r = http("PATCH", url, {"refresh_token": None, "expires_at": None}, headers=self.a)
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json()["expires_at"])
        self.assertEqual(set(r.json()), KEYS)

        # PUT: access_token required.
        r = http("PUT", url, {"provider": "GOOGLE", "account_id": "g1"}, headers=self.a)
        self.assertEqual((r.status, r.json()), (400, {"access_token": ["This field is required."]}))
        r = http("PUT", url, {"provider": "GOOGLE", "account_id": body["account_id"],
                              "access_token": token()}, headers=self.a)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["provider"], "GOOGLE")
        self.assert_no_token(r)

        r = http("DELETE", url, headers=self.a)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(http("GET", url, headers=self.a).json(), NOT_FOUND)
        r = http("DELETE", url, headers=self.a)
        self.assertEqual((r.status, r.json()), (404, NOT_FOUND))

        # Audit entries with {provider, account_id}.
        def actions():
            r = http("GET", f"/api/audit-logs/?resource_type=platform_credential", headers=self.a)
            return [e for e in r.json() if e["resource_id"] == c["id"]]
        wait_for(lambda: len(actions()) == 5, "the audit entries")
        got = sorted(e["action"] for e in actions())
        self.assertEqual(got, ["credential_created", "credential_deleted", "credential_updated",
                               "credential_updated", "credential_updated"])
        created = [e for e in actions() if e["action"] == "credential_created"][0]
        self.assertEqual(created["metadata"], {"provider": "META",
                                               "account_id": body["account_id"]})
        # The actor is named with id and e-mail (the e-mail travels in the access token).
        me = http("GET", "/api/me/", headers=self.a).json()["user"]
        self.assertEqual(created["user"], {"id": me["id"], "email": me["email"]})

    def test_validation_and_duplicates(self):
        r = http("POST", BASE, {}, headers=self.a)
        self.assertEqual((r.status, r.json()), (400, {
            "provider": ["This field is required."], "account_id": ["This field is required."],
            "access_token": ["This field is required."]}))
        r, _ = self.create(provider="MYSPACE")
        self.assertEqual((r.status, r.json()), (400, {"provider": ['"MYSPACE" is not a valid choice.']}))
        r, body = self.create(refresh_token=None)
        self.assertEqual(r.status, 201, r)
        r, _ = self.create(account_id=body["account_id"])
        self.assertEqual((r.status, r.json()), (400, UNIQUE))
        self.assert_no_token(r)
        # Another tenant may use the same provider and account.
        r, _ = self.create(hdr=self.b, account_id=body["account_id"])
        self.assertEqual(r.status, 201, r)

    def test_access(self):
        r, _ = self.create()
        c = r.json()
        url = f"{BASE}{c['id']}/"
        self.assertEqual(http("GET", BASE).json(), NO_CREDS)
        r, _ = self.create(hdr=self.viewer)
        self.assertEqual(r.status, 403, r)
        self.assertIn("detail", r.json())
        for m, b in (("PATCH", {"account_id": "x"}), ("DELETE", None)):
            r = http(m, url, b, headers=self.viewer)
            self.assertEqual(r.status, 403, r)
        # Tenant B sees nothing of A's.
        self.assertEqual(http("GET", url, headers=self.b).json(), NOT_FOUND)
        r = http("PATCH", url, {"account_id": "x"}, headers=self.b)
        self.assertEqual((r.status, r.json()), (404, NOT_FOUND))
        r = http("DELETE", url, headers=self.b)
        self.assertEqual((r.status, r.json()), (404, NOT_FOUND))
        self.assertNotIn(c["id"], [x["id"] for x in http("GET", BASE, headers=self.b).json()])
        r = http("GET", f"{BASE}not-a-uuid/", headers=self.a)
        self.assertEqual((r.status, r.json()), (404, NOT_FOUND))

    def test_zz_no_token_in_logs(self):
        logs = glob.glob(os.path.join(env("ADI_LOG_DIR"), "*.log"))
        self.assertTrue(logs)
        for f in logs:
            with open(f, "rb") as fh:
                self.assertNotIn(MARK.encode(), fh.read(), f)


if __name__ == "__main__":
    unittest.main()
