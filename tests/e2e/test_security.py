# SPDX-License-Identifier: MIT
"""Security checks against the running suite (issue 8, item 3).

- Cross-tenant matrix: tenants A and B, each with an ADMIN; B owns a user, a role assignment, an
  invitation, a platform credential and a task. A's admin calls every id-bearing route of API.md
  with B's ids (users/{id}, user-roles/{id}, tenants/{id}, tenants/{id}/invite/,
  platform-credentials/{id} with every method, tasks/{id}/), plainly and with every way a client
  could name a tenant (query ?tenant=&tenant_id=&tenant_override=, X-Tenant-Id, "tenant" and
  "tenant_id" in the body): 404 {"detail": "Not found."} (400 "does not belong to this tenant" for
  a role grant naming B's user), and no answer to A - lists and audit-log filters included - ever
  holds one of B's ids or e-mails. B's objects are unchanged afterwards. Writes with a spoofed
  tenant land in A's tenant.
- Ended access: the access tokens of a user deleted with `adi-admin delete-user`, of one
  deactivated with `adi-admin deactivate-user`, and of one whose ADMIN role was deleted through
  DELETE /api/user-roles/{id}/ are refused (401 token_not_valid) on every authenticated route;
  the refresh of the deleted and deactivated users fails; the role-less user's new token gets 403
  on the ADMIN routes.
- Redis ACL: a private redis-server started by k8s/base/redis/redis-acl.sh with
  k8s/base/redis/acl.rules (the files compose and Kubernetes use); a forged request with a service
  principal (vault.decrypt "from the task runner") XADDed to svc:{vault}:req is refused NOPERM for
  every user that does not send to the vault (default, auth, tenant, keda) and accepted for those
  that do (vault, task-runner, gateway, admin), so the check can fail.
"""
import os
import secrets
import shutil
import subprocess
import tempfile
import unittest
import uuid

from gw_e2e import Redis, RedisError, env, free_port, http, mp_pack, wait_for

PASSWORD = "e2e-password-1"
NOT_FOUND = {"detail": "Not found."}
OTHER_TENANT = {"user": ["The selected user does not belong to this tenant."]}
NOT_ADMIN = {"detail": "You must be a tenant admin to perform this action."}


def tag(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def bearer(access):
    return {"Authorization": f"Bearer {access}"}


def login(email):
    r = http("POST", "/api/auth/login/", {"username": email, "password": PASSWORD})
    assert r.status == 200, r
    return r.json()


def signup():
    body = {"name": tag("Sec"), "admin_email": f"{tag('admin')}@e2e.example",
            "admin_password": PASSWORD}
    r = http("POST", "/api/tenants/", body)
    assert r.status == 201, r
    t = r.json()
    t["email"] = body["admin_email"]
    t["login"] = login(body["admin_email"])
    t["hdr"] = bearer(t["login"]["access"])
    return t


def created(r, status=201):
    assert r.status == status, r
    return r.json()


def admin_cli(*args):
    p = subprocess.run([os.path.join(env("ADI_BIN_DIR"), "adi-admin"), *args],
                       env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"adi-admin {' '.join(args)}: {p.returncode} {p.stderr}"
    return p.stdout


def token_not_valid(r):
    body = r.json() if r.body else {}
    return r.status == 401 and body.get("code") == "token_not_valid"


def setUpModule():
    # Each gateway thread learns that a service's stream exists on its own poll: wait for routes.
    wait_for(lambda: all(http("POST", "/api/users/accept-invite/", {}).status == 400
                         for _ in range(4)), "the gateway to route to the tenant service")


class CrossTenant(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = signup()
        cls.b = signup()
        b = cls.b
        h = b["hdr"]
        # Wait for the vault and task-runner routes (each gateway thread on its own).
        wait_for(lambda: all(http("GET", "/api/platform-credentials/", headers=h).status == 200
                             and http("GET", f"/api/tasks/{uuid.uuid4()}/", headers=h).status
                             == 404 for _ in range(4)), "the vault and task routes")
        b["user_email"] = f"{tag('buser')}@e2e.example"
        b["user"] = created(http("POST", "/api/users/", {"email": b["user_email"],
                                                         "password": PASSWORD}, headers=h))["id"]
        b["role"] = created(http("POST", "/api/roles/assign/", {"user": b["user"],
                                                                 "role": "ANALYST"}, headers=h))
        b["inv_email"] = f"{tag('binv')}@e2e.example"
        b["inv"] = created(http("POST", f"/api/tenants/{b['id']}/invite/",
                                {"email": b["inv_email"], "role": "VIEWER"}, headers=h))
        b["cred"] = created(http("POST", "/api/platform-credentials/",
                                 {"provider": "META", "account_id": tag("bacct"),
                                  "access_token": "sec-e2e-b-token"}, headers=h))
        b["task"] = created(http("POST", "/api/tasks/", {"name": "sync_google_example",
                                                          "args": {}}, headers=h), 202)["id"]
        # Everything of B that must never reach A.
        cls.b_marks = {b["id"], b["admin_user_id"], b["email"], b["user"], b["user_email"],
                       b["role"]["id"], b["inv"]["id"], b["inv"]["token"], b["inv_email"],
                       b["cred"]["id"], b["cred"]["account_id"], b["task"]}

    def spoofs(self):
        """(query, headers, body extras) naming B as the tenant, and the plain variant."""
        bid = self.b["id"]
        return [("", {}, {}),
                (f"?tenant={bid}&tenant_id={bid}&tenant_override={bid}", {"X-Tenant-Id": bid},
                 {"tenant": bid, "tenant_id": bid})]

    def call_a(self, method, path, body=None, query="", headers=None):
        r = http(method, path + query, body, headers={**self.a["hdr"], **(headers or {})})
        for mark in self.b_marks:
            self.assertNotIn(mark.encode(), r.body, f"{method} {path}{query} leaked B's {mark}")
        return r

    def test_id_bearing_routes_404(self):
        b = self.b
        cases = [
            ("GET", f"/api/tenants/{b['id']}/", None),
            ("POST", f"/api/tenants/{b['id']}/invite/", {"email": f"{tag('x')}@e2e.example"}),
            ("GET", f"/api/users/{b['user']}/", None),
            ("GET", f"/api/users/{b['admin_user_id']}/", None),
            ("DELETE", f"/api/user-roles/{b['role']['id']}/", None),
            ("GET", f"/api/platform-credentials/{b['cred']['id']}/", None),
            ("PUT", f"/api/platform-credentials/{b['cred']['id']}/",
             {"provider": "META", "account_id": "stolen", "access_token": "x"}),
            ("PATCH", f"/api/platform-credentials/{b['cred']['id']}/", {"account_id": "stolen"}),
            ("DELETE", f"/api/platform-credentials/{b['cred']['id']}/", None),
            ("GET", f"/api/tasks/{b['task']}/", None),
        ]
        for method, path, body in cases:
            for query, headers, extra in self.spoofs():
                with self.subTest(method=method, path=path, spoofed=bool(query)):
                    bd = None if body is None else {**body, **extra}
                    r = self.call_a(method, path, bd, query, headers)
                    self.assertEqual((r.status, r.json()), (404, NOT_FOUND), r)
        # A path id of A's own with B's id in the query: the path wins.
        r = self.call_a("GET", f"/api/users/{self.a['admin_user_id']}/", query=f"?id={b['user']}")
        self.assertEqual((r.status, r.json()["id"]), (200, self.a["admin_user_id"]))
        # Role grants naming B's user: 400, nothing granted.
        for path in ("/api/user-roles/", "/api/roles/assign/"):
            for query, headers, extra in self.spoofs():
                r = self.call_a("POST", path, {"user": b["user"], "role": "ADMIN", **extra},
                                query, headers)
                self.assertEqual((r.status, r.json()), (400, OTHER_TENANT), r)
        self.assert_b_intact()

    def test_lists_and_filters_hold_only_a(self):
        a = self.a
        for query, headers, _ in self.spoofs():
            for path in ("/api/users/", "/api/user-roles/", "/api/tenants/",
                         "/api/platform-credentials/", "/api/me/"):
                with self.subTest(path=path, spoofed=bool(query)):
                    r = self.call_a("GET", path, query=query, headers=headers)
                    self.assertEqual(r.status, 200, r)
            r = self.call_a("GET", "/api/tenants/", query=query, headers=headers)
            self.assertEqual([t["id"] for t in r.json()], [a["id"]])
            r = self.call_a("GET", "/api/me/", query=query, headers=headers)
            self.assertEqual(r.json()["tenant_id"], a["id"])
        for filt in ("", "?action=credential_created", "?resource_type=platform_credential",
                     "?action=role_assigned&resource_type=role", "?action=login",
                     f"?resource_id={self.b['cred']['id']}", f"?tenant={self.b['id']}",
                     f"?tenant_id={self.b['id']}&user={self.b['admin_user_id']}"):
            with self.subTest(audit=filt):
                r = self.call_a("GET", "/api/audit-logs/", query=filt,
                                headers={"X-Tenant-Id": self.b["id"]})
                self.assertEqual(r.status, 200, r)
                self.assertTrue(all(e["tenant"] == a["id"] for e in r.json()), r)

    def test_spoofed_writes_land_in_a(self):
        a, b = self.a, self.b
        query, headers, extra = self.spoofs()[1]
        cred = self.call_a("POST", "/api/platform-credentials/",
                           {"provider": "GOOGLE", "account_id": tag("spoof"),
                            "access_token": "sec-e2e-spoof", **extra}, query, headers)
        self.assertEqual(cred.status, 201, cred)
        email = f"{tag('spoofuser')}@e2e.example"
        user = self.call_a("POST", "/api/users/", {"email": email, "password": PASSWORD, **extra},
                           query, headers)
        self.assertEqual(user.status, 201, user)
        inv = self.call_a("POST", "/api/users/invite/", {"email": f"{tag('si')}@e2e.example",
                                                         **extra}, query, headers)
        self.assertEqual(inv.status, 201, inv)
        task = self.call_a("POST", "/api/tasks/", {"name": "sync_google_example", "args": {},
                                                   **extra}, query, headers)
        self.assertEqual(task.status, 202, task)
        # In A, not in B.
        ids_a = [c["id"] for c in self.call_a("GET", "/api/platform-credentials/").json()]
        self.assertIn(cred.json()["id"], ids_a)
        r = http("GET", "/api/platform-credentials/", headers=b["hdr"])
        self.assertNotIn(cred.json()["id"], [c["id"] for c in r.json()])
        self.assertEqual(login(email)["tenant_id"], a["id"])
        r = http("GET", f"/api/users/{user.json()['id']}/", headers=b["hdr"])
        self.assertEqual((r.status, r.json()), (404, NOT_FOUND))
        r = http("GET", f"/api/tasks/{task.json()['id']}/", headers=b["hdr"])
        self.assertEqual((r.status, r.json()), (404, NOT_FOUND))
        self.assertEqual(self.call_a("GET", f"/api/tasks/{task.json()['id']}/").status, 200)

    def assert_b_intact(self):
        b, h = self.b, self.b["hdr"]
        r = http("GET", f"/api/platform-credentials/{b['cred']['id']}/", headers=h)
        self.assertEqual((r.status, r.json()["account_id"]), (200, b["cred"]["account_id"]))
        self.assertIn(b["role"]["id"], [x["id"] for x in
                                        http("GET", "/api/user-roles/", headers=h).json()])
        self.assertEqual(http("GET", f"/api/users/{b['user']}/", headers=h).status, 200)
        self.assertEqual(http("GET", f"/api/tasks/{b['task']}/", headers=h).status, 200)


class EndedAccess(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.t = signup()
        h = cls.t["hdr"]
        wait_for(lambda: all(http("GET", "/api/platform-credentials/", headers=h).status == 200
                             and http("GET", f"/api/tasks/{uuid.uuid4()}/", headers=h).status
                             == 404 for _ in range(4)), "the vault and task routes")
        cls.cred = created(http("POST", "/api/platform-credentials/",
                                {"provider": "TIKTOK", "account_id": tag("acct"),
                                 "access_token": "sec-e2e-ended"}, headers=h))["id"]
        cls.task = created(http("POST", "/api/tasks/", {"name": "sync_google_example",
                                                        "args": {}}, headers=h), 202)["id"]

    def admin_user(self):
        """A second ADMIN of the tenant: (id, email, role assignment id, login json)."""
        h = self.t["hdr"]
        email = f"{tag('ended')}@e2e.example"
        uid = created(http("POST", "/api/users/", {"email": email, "password": PASSWORD},
                           headers=h))["id"]
        rid = created(http("POST", "/api/roles/assign/", {"user": uid, "role": "ADMIN"},
                           headers=h))["id"]
        tokens = login(email)
        self.assertEqual(http("GET", "/api/users/", headers=bearer(tokens["access"])).status, 200)
        return uid, email, rid, tokens

    def routes(self, uid, rid):
        tid = self.t["id"]
        new = f"{tag('n')}@e2e.example"
        return [("GET", "/api/me/", None, False), ("GET", "/api/users/", None, False),
                ("POST", "/api/users/", {"email": new, "password": PASSWORD}, True),
                ("GET", f"/api/users/{uid}/", None, False), ("GET", "/api/user-roles/", None, False),
                ("POST", "/api/user-roles/", {"user": uid, "role": "VIEWER"}, True),
                ("POST", "/api/roles/assign/", {"user": uid, "role": "VIEWER"}, True),
                ("DELETE", f"/api/user-roles/{rid}/", None, True),
                ("GET", "/api/tenants/", None, False), ("GET", f"/api/tenants/{tid}/", None, False),
                ("POST", f"/api/tenants/{tid}/invite/", {"email": new}, True),
                ("POST", "/api/users/invite/", {"email": new}, True),
                ("GET", "/api/audit-logs/", None, False),
                ("GET", "/api/platform-credentials/", None, False),
                ("POST", "/api/platform-credentials/",
                 {"provider": "META", "account_id": tag("x"), "access_token": "t"}, True),
                ("GET", f"/api/platform-credentials/{self.cred}/", None, False),
                ("PUT", f"/api/platform-credentials/{self.cred}/",
                 {"provider": "TIKTOK", "account_id": "changed", "access_token": "t"}, True),
                ("PATCH", f"/api/platform-credentials/{self.cred}/", {"account_id": "c"}, True),
                ("DELETE", f"/api/platform-credentials/{self.cred}/", None, True),
                ("POST", "/api/tasks/", {"name": "sync_google_example", "args": {}}, True),
                ("GET", f"/api/tasks/{self.task}/", None, True)]

    def assert_refused_everywhere(self, access, uid, rid):
        hdr = bearer(access)
        wait_for(lambda: token_not_valid(http("GET", "/api/me/", headers=hdr)),
                 "the ended user's access token to be refused")
        for method, path, body, _ in self.routes(uid, rid):
            for _ in range(2):  # whichever gateway thread serves it
                with self.subTest(method=method, path=path):
                    r = http(method, path, body, headers=hdr)
                    self.assertTrue(token_not_valid(r), r)
        # Nothing of the tenant changed meanwhile.
        r = http("GET", f"/api/platform-credentials/{self.cred}/", headers=self.t["hdr"])
        self.assertEqual(r.status, 200, r)

    def test_deleted_user(self):
        uid, email, rid, tokens = self.admin_user()
        out = admin_cli("delete-user", "--email", email, "--tenant", self.t["id"])
        self.assertIn(uid, out)
        self.assert_refused_everywhere(tokens["access"], uid, rid)
        r = http("POST", "/api/token/refresh/", {"refresh": tokens["refresh"]})
        self.assertEqual(r.status, 401, r)
        r = http("POST", "/api/auth/login/", {"username": email, "password": PASSWORD})
        self.assertEqual(r.status, 401, r)
        r = http("GET", f"/api/users/{uid}/", headers=self.t["hdr"])
        self.assertEqual((r.status, r.json()), (404, NOT_FOUND))

    def test_deactivated_user(self):
        uid, email, rid, tokens = self.admin_user()
        admin_cli("deactivate-user", "--email", email, "--tenant", self.t["id"])
        self.assert_refused_everywhere(tokens["access"], uid, rid)
        r = http("POST", "/api/token/refresh/", {"refresh": tokens["refresh"]})
        self.assertEqual(r.status, 401, r)

    def test_revoked_role(self):
        uid, _, rid, tokens = self.admin_user()
        r = http("DELETE", f"/api/user-roles/{rid}/", headers=self.t["hdr"])
        self.assertEqual(r.status, 204, r)
        self.assert_refused_everywhere(tokens["access"], uid, rid)
        # The refreshed token carries no role: 403 on every ADMIN route, reads still served.
        r = http("POST", "/api/token/refresh/", {"refresh": tokens["refresh"]})
        self.assertEqual(r.status, 200, r)
        hdr = bearer(r.json()["access"])
        for method, path, body, admin in self.routes(uid, rid):
            with self.subTest(method=method, path=path):
                r = http(method, path, body, headers=hdr)
                if admin:
                    self.assertEqual((r.status, r.json()), (403, NOT_ADMIN), r)
                else:
                    self.assertEqual(r.status, 200, r)


class RedisAcl(unittest.TestCase):
    """The ACL users of k8s/base/redis against a forged request to the vault."""

    RULES = os.path.join(env("ADI_REPO"), "k8s/base/redis/acl.rules")
    SCRIPT = os.path.join(env("ADI_REPO"), "k8s/base/redis/redis-acl.sh")

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="adi-sec-acl-")
        with open(cls.RULES) as f:
            cls.users = [line.split()[1] for line in f if line.startswith("user ")]
        cls.pw = {u: secrets.token_hex(16) for u in cls.users if u != "default"}
        cls.port = free_port()
        renv = {"PATH": os.environ["PATH"], "ACL_RULES": cls.RULES,
                "ACL_FILE": os.path.join(cls.tmp, "users.acl")}
        for u, p in cls.pw.items():
            renv["REDIS_PASSWORD_" + u.upper().replace("-", "_")] = p
        cls.log = open(os.path.join(cls.tmp, "redis.log"), "wb")
        cls.proc = subprocess.Popen(
            ["sh", cls.SCRIPT, "--port", str(cls.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", cls.tmp], env=renv, stdout=cls.log,
            stderr=subprocess.STDOUT)

        def up():
            if cls.proc.poll() is not None:
                raise AssertionError("redis-acl.sh exited %s" % cls.proc.returncode)
            try:
                with Redis(port=cls.port) as r:
                    return r.command("PING") == "PONG"
            except OSError:
                return False
        wait_for(up, "the ACL redis-server to answer")

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(timeout=30)
        cls.log.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def client(self, user):
        r = Redis(port=self.port)
        self.addCleanup(r.close)
        if user != "default":
            self.assertEqual(r.command("AUTH", user, self.pw[user]), "OK")
        return r

    def forged(self):
        """vault.decrypt as if the task runner asked, for any tenant, replying to the forger."""
        return mp_pack({"v": 1, "id": f"forged-{uuid.uuid4()}", "op": "vault.decrypt",
                        "reply_to": "gw:{forger-0}:rep", "deadline_ms": 2 ** 62,
                        "trace_id": "forged", "params": {"id": str(uuid.uuid4())}, "body": None,
                        "principal": {"user_id": "", "tenant_id": str(uuid.uuid4()),
                                      "email": "", "roles": ["ADMIN"], "superuser": True,
                                      "service": "task-runner"}})

    def xadd(self, user):
        try:
            return self.client(user).command("XADD", "svc:{vault}:req", "*", "m", self.forged())
        except RedisError as e:
            return e

    def test_forged_principal_refused_without_the_acl(self):
        self.assertTrue(set(self.users) >= {"default", "auth", "tenant", "keda", "vault"})
        for user in ("default", "auth", "tenant", "keda"):
            with self.subTest(user=user):
                rep = self.xadd(user)
                self.assertIsInstance(rep, RedisError, f"{user} could XADD to svc:{{vault}}:req")
                self.assertTrue(str(rep).startswith("NOPERM"), rep)
        # The same command by the users that send to the vault is accepted: the refusal above is
        # the ACL's doing, not a malformed command.
        for user in ("vault", "task-runner", "gateway", "admin"):
            with self.subTest(user=user):
                rep = self.xadd(user)
                self.assertIsInstance(rep, bytes, f"{user}: {rep}")
        # Exactly those four reached the stream (read as the vault, which may XREAD its own).
        rep = self.client("vault").command("XREAD", "COUNT", 100, "STREAMS", "svc:{vault}:req", "0")
        self.assertEqual(len(rep[0][1]), 4, rep)


if __name__ == "__main__":
    unittest.main()
