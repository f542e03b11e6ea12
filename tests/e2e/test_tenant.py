# SPDX-License-Identifier: MIT
"""The tenant routes through the gateway against the running suite (API.md "Tenants", the
invitation routes of "Users", "Audit log"): the whole onboarding flow (signup -> login -> invite
-> accept -> the invited user logs in with the invitation's role -> role revoked -> the audit
entries of all of it), the exact shapes and DRF error bodies, the cross-tenant matrix (another
tenant's id answers 404 or 403, never data), signup failures leaving nothing behind, and 20
concurrent accepts of one token giving exactly one 201.

Tenants are made through POST /api/tenants/ with random names and e-mails, so reruns and other
tests never collide; the superuser comes from `adi-admin createsuperuser`.
"""
import os
import re
import subprocess
import unittest
import uuid
from concurrent.futures import ThreadPoolExecutor

from gw_e2e import env, http, wait_for

PASSWORD = "e2e-password-1"
NO_CREDS = {"detail": "Authentication credentials were not provided."}
NOT_ADMIN = {"detail": "You must be a tenant admin to perform this action."}
NOT_FOUND = {"detail": "Not found."}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?[+-]\d\d:\d\d$")
USER_KEYS = {"id", "email", "first_name", "last_name", "tenant", "timezone", "roles"}
INVITATION_KEYS = {"id", "email", "role", "token", "expires_at", "accepted_at"}
AUDIT_KEYS = {"id", "tenant", "user", "action", "resource_type", "resource_id", "metadata",
              "created_at"}


def tag(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def bearer(access):
    return {"Authorization": f"Bearer {access}"}


def signup(name=None, email=None, password=PASSWORD, **extra):
    body = {"name": tag("Tenant") if name is None else name,
            "admin_email": f"{tag('admin')}@e2e.example" if email is None else email,
            "admin_password": password, **extra}
    return http("POST", "/api/tenants/", body), body


def login(email, password=PASSWORD):
    r = http("POST", "/api/auth/login/", {"username": email, "password": password})
    assert r.status == 200, r
    return r.json()


def superuser_access():
    """A superuser of no tenant (adi-admin createsuperuser), logged in."""
    email = f"{tag('root')}@e2e.example"
    e = dict(os.environ)
    e.setdefault("PASSWORD_ITERATIONS", "1000")
    e["ADI_E2E_PASSWORD"] = PASSWORD
    p = subprocess.run([os.path.join(env("ADI_BIN_DIR"), "adi-admin"), "createsuperuser",
                        "--email", email, "--password-env", "ADI_E2E_PASSWORD"], env=e,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return login(email)["access"]


def setUpModule():
    # The suite is up once /api/health/ answers, but each gateway thread learns that a service's
    # stream exists on its own poll, and answers 503 until then: wait for the tenant routes.
    wait_for(lambda: all(http("POST", "/api/users/accept-invite/", {}).status == 400
                         for _ in range(4)), "the gateway to route to the tenant service")


class Onboarding(unittest.TestCase):
    """Tenant A goes through the whole flow; tenant B is the other tenant of the matrix."""

    @classmethod
    def setUpClass(cls):
        r, cls.a_body = signup(admin_first_name="Ada", admin_last_name="Admin")
        assert r.status == 201, r
        cls.a = r.json()
        r, cls.b_body = signup()
        assert r.status == 201, r
        cls.b = r.json()
        cls.a_tok = login(cls.a_body["admin_email"])
        cls.b_tok = login(cls.b_body["admin_email"])
        cls.a_hdr = bearer(cls.a_tok["access"])
        cls.b_hdr = bearer(cls.b_tok["access"])
        cls.root_hdr = bearer(superuser_access())

    def invite(self, email, role=None, path=None, hdr=None):
        body = {"email": email}
        if role is not None:
            body["role"] = role
        return http("POST", path or f"/api/tenants/{self.a['id']}/invite/", body,
                    headers=hdr or self.a_hdr)

    def accept(self, token, password=PASSWORD, **extra):
        return http("POST", "/api/users/accept-invite/",
                    {"token": token, "password": password, **extra})

    def audit(self, hdr, query=""):
        r = http("GET", f"/api/audit-logs/{query}", headers=hdr)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_signup_shape_and_admin_login(self):
        self.assertEqual(set(self.a), {"id", "name", "created_at", "admin_user_id"})
        self.assertEqual(self.a["name"], self.a_body["name"])
        self.assertRegex(self.a["created_at"], ISO)
        # Ids look like Django's uuid4 ones (the tenant's is derived from the request, but
        # clients' validators often accept versions 1-5 only).
        v4 = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
        self.assertRegex(self.a["id"], v4)
        self.assertRegex(self.a["admin_user_id"], v4)
        self.assertEqual(self.a_tok["tenant_id"], self.a["id"])
        self.assertEqual(self.a_tok["user"]["id"], self.a["admin_user_id"])
        self.assertEqual(self.a_tok["user"]["roles"], ["ADMIN"])
        self.assertEqual(self.a_tok["user"]["first_name"], "Ada")

    def test_tenants_list_and_get(self):
        r = http("GET", "/api/tenants/", headers=self.a_hdr)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), [{"id": self.a["id"], "name": self.a["name"],
                                     "created_at": self.a["created_at"]}])
        r = http("GET", f"/api/tenants/{self.a['id']}/", headers=self.a_hdr)
        self.assertEqual((r.status, r.json()["id"]), (200, self.a["id"]))
        self.assertEqual(http("GET", "/api/tenants/").json(), NO_CREDS)
        # The superuser sees every tenant, oldest first.
        r = http("GET", "/api/tenants/", headers=self.root_hdr)
        ids = [t["id"] for t in r.json()]
        self.assertLess(ids.index(self.a["id"]), ids.index(self.b["id"]))
        r = http("GET", f"/api/tenants/{self.b['id']}/", headers=self.root_hdr)
        self.assertEqual((r.status, r.json()["name"]), (200, self.b["name"]))

    def test_cross_tenant_matrix(self):
        a, b = self.a["id"], self.b["id"]
        for method, path, body in [
                ("GET", f"/api/tenants/{b}/", None),
                ("POST", f"/api/tenants/{b}/invite/", {"email": "x@e2e.example"}),
                ("GET", f"/api/users/{self.b['admin_user_id']}/", None),
                ("GET", "/api/tenants/not-a-uuid/", None)]:
            r = http(method, path, body, headers=self.a_hdr)
            self.assertEqual((r.status, r.json()), (404, NOT_FOUND), f"{method} {path}")
        r = http("GET", f"/api/tenants/{a}/", headers=self.b_hdr)
        self.assertEqual((r.status, r.json()), (404, NOT_FOUND))
        self.assertEqual([t["id"] for t in http("GET", "/api/tenants/", headers=self.b_hdr)
                          .json()], [b])
        self.assertNotIn(a, {e["tenant"] for e in self.audit(self.b_hdr)})
        # Without a token, the invite routes want credentials.
        r = http("POST", "/api/users/invite/", {"email": "x@e2e.example"})
        self.assertEqual((r.status, r.json()), (401, NO_CREDS))

    def test_flow(self):
        # Invite an analyst (tenant route) and a role-less user (legacy route).
        email = f"{tag('analyst')}@e2e.example"
        r = self.invite(email, "ANALYST")
        self.assertEqual(r.status, 201, r)
        inv = r.json()
        self.assertEqual(set(inv), INVITATION_KEYS)
        self.assertEqual((inv["email"], inv["role"], inv["accepted_at"]), (email, "ANALYST", None))
        self.assertRegex(inv["token"], r"^[A-Za-z0-9_-]{43}$")
        self.assertRegex(inv["expires_at"], ISO)
        plain_email = f"{tag('plain')}@e2e.example"
        r = self.invite(plain_email, path="/api/users/invite/")
        self.assertEqual(r.status, 201, r)
        plain = r.json()
        self.assertIsNone(plain["role"])

        # Accept: every error first, then the real thing, then a reuse.
        r = self.accept("x" * 43)
        self.assertEqual((r.status, r.json()), (400, {"token": ["Invalid invitation token."]}))
        r = self.accept(inv["token"], "short")
        self.assertEqual(r.status, 400)
        self.assertEqual(list(r.json()), ["password"])
        r = self.accept(inv["token"], first_name="Ana", last_name="Lyst")
        self.assertEqual(r.status, 201, r)
        user = r.json()
        self.assertEqual(set(user), USER_KEYS)
        self.assertEqual((user["email"], user["tenant"], user["roles"], user["first_name"]),
                         (email, self.a["id"], ["ANALYST"], "Ana"))
        r = self.accept(inv["token"])
        self.assertEqual((r.status, r.json()),
                         (400, {"token": ["Invitation has already been accepted."]}))
        r = self.accept(plain["token"])
        self.assertEqual((r.status, r.json()["roles"]), (201, []))

        # The invited user logs in with the invitation's role, and is no admin.
        tok = login(email)
        self.assertEqual((tok["tenant_id"], tok["user"]["roles"]), (self.a["id"], ["ANALYST"]))
        hdr = bearer(tok["access"])
        r = self.invite(f"{tag('nope')}@e2e.example", hdr=hdr)
        self.assertEqual((r.status, r.json()), (403, NOT_ADMIN))
        r = http("GET", "/api/me/", headers=hdr)
        self.assertEqual((r.status, r.json()["user"]["id"]), (200, user["id"]))

        # The admin revokes the role: the old token is refused at once, a new login has no role.
        rows = http("GET", "/api/user-roles/", headers=self.a_hdr).json()
        rid = next(x["id"] for x in rows if x["user"] == user["id"])
        r = http("DELETE", f"/api/user-roles/{rid}/", headers=self.a_hdr)
        self.assertEqual(r.status, 204, r)
        wait_for(lambda: http("GET", "/api/me/", headers=hdr).status == 401,
                 "the revoked token to be refused")
        self.assertEqual(login(email)["user"]["roles"], [])

        # Everything left an audit entry in tenant A, newest first.
        want = {("tenant_created", "tenant", self.a["id"]),
                ("invitation_created", "invitation", inv["id"]),
                ("invitation_created", "invitation", plain["id"]),
                ("invitation_accepted", "invitation", inv["id"]),
                ("invitation_accepted", "invitation", plain["id"]),
                ("login", "auth", user["id"]),
                ("role_revoked", "role", user["id"])}

        def entries():
            got = self.audit(self.a_hdr)
            have = {(e["action"], e["resource_type"], e["resource_id"]) for e in got}
            return got if want <= have else None

        got = wait_for(entries, "the audit entries of the flow")
        for e in got:
            self.assertEqual(set(e), AUDIT_KEYS)
            self.assertEqual(e["tenant"], self.a["id"])
            self.assertRegex(e["created_at"], ISO)
            self.assertIsInstance(e["metadata"], dict)
        stamps = [e["created_at"] for e in got]
        self.assertEqual(stamps, sorted(stamps, reverse=True))
        accepted = next(e for e in got if e["action"] == "invitation_accepted"
                        and e["resource_id"] == inv["id"])
        self.assertEqual(accepted["user"], {"id": user["id"], "email": email})
        self.assertEqual(accepted["metadata"]["role"], "ANALYST")
        created = next(e for e in got if e["action"] == "invitation_created"
                       and e["resource_id"] == inv["id"])
        self.assertEqual(created["user"], {"id": self.a["admin_user_id"],
                                           "email": self.a_body["admin_email"].lower()})
        revoked = next(e for e in got if e["action"] == "role_revoked")
        self.assertEqual(revoked["metadata"], {"role": "ANALYST"})
        only = self.audit(self.a_hdr, "?action=invitation_created")
        self.assertTrue(only and all(e["action"] == "invitation_created" for e in only))
        only = self.audit(self.a_hdr, "?resource_type=invitation&action=invitation_accepted")
        self.assertLessEqual({inv["id"], plain["id"]}, {e["resource_id"] for e in only})
        self.assertEqual({(e["action"], e["resource_type"]) for e in only},
                         {("invitation_accepted", "invitation")})
        self.assertNotIn(inv["token"], str(got))  # the token is in no audit entry

    def test_expired_and_taken(self):
        r = self.invite(self.a_body["admin_email"].lower(), "VIEWER")
        self.assertEqual(r.status, 201, r)
        r = self.accept(r.json()["token"])
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"non_field_errors": [
            "A user with this email already exists in this tenant."]})

        r = self.invite(f"{tag('late')}@e2e.example", "VIEWER")
        self.assertEqual(r.status, 201, r)
        invitation = r.json()
        subprocess.run([os.path.join(env("ADI_PG_BIN"), "psql"), env("DATABASE_URL"), "-qAtX",
                        "-v", "ON_ERROR_STOP=1", "-c",
                        "UPDATE tenant.invitations SET expires_at = now() - interval '1 second' "
                        f"WHERE id = '{invitation['id']}'"], check=True, capture_output=True)
        r = self.accept(invitation["token"])
        self.assertEqual((r.status, r.json()), (400, {"token": ["Invitation has expired."]}))

    def test_unknown_tokens(self):
        for token in ("no-such-token", "A" * 43, "A" * 600):
            r = self.accept(token)
            self.assertEqual((r.status, r.json()), (400, {"token": ["Invalid invitation token."]}),
                             token[:50])

    def test_concurrent_accepts(self):
        r = self.invite(f"{tag('racer')}@e2e.example", "VIEWER")
        token = r.json()["token"]
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(lambda _: self.accept(token), range(20)))
        statuses = sorted(a.status for a in answers)
        self.assertEqual(statuses, [201] + [400] * 19, answers)
        for a in answers:
            if a.status == 400:
                self.assertEqual(a.json(), {"token": ["Invitation has already been accepted."]})

    def test_invite_errors(self):
        r = self.invite("not-an-email", "VIEWER")
        self.assertEqual((r.status, list(r.json())), (400, ["email"]))
        r = self.invite(f"{tag('x')}@e2e.example", "OWNER")
        self.assertEqual((r.status, r.json()), (400, {"role": ['"OWNER" is not a valid choice.']}))
        r = self.invite(f"{tag('su')}@e2e.example", "VIEWER",
                        path=f"/api/tenants/{self.b['id']}/invite/", hdr=self.root_hdr)
        self.assertEqual(r.status, 201, r)


class SignupFailures(unittest.TestCase):
    def test_validation_leaves_nothing(self):
        name = tag("Broken")
        for kw, field in [({"email": "not-an-email"}, "admin_email"),
                          ({"password": "short"}, "admin_password"),
                          ({"name": "   "}, "name")]:
            r, _ = signup(**{"name": name, **kw})
            self.assertEqual(r.status, 400, r)
            self.assertEqual(list(r.json()), [field])
        r = http("POST", "/api/tenants/", {})
        self.assertEqual(r.status, 400)
        self.assertEqual(set(r.json()), {"name", "admin_email", "admin_password"})
        names = [t["name"] for t in http("GET", "/api/tenants/",
                                         headers=bearer(superuser_access())).json()]
        self.assertNotIn(name, names)

    def test_idempotency_key(self):
        key = str(uuid.uuid4())
        body = {"name": tag("Once"), "admin_email": f"{tag('once')}@e2e.example",
                "admin_password": PASSWORD}
        r1 = http("POST", "/api/tenants/", body, headers={"Idempotency-Key": key})
        r2 = http("POST", "/api/tenants/", body, headers={"Idempotency-Key": key})
        self.assertEqual((r1.status, r2.status), (201, 201))
        self.assertEqual(r1.json(), r2.json())


if __name__ == "__main__":
    unittest.main()
