# SPDX-License-Identifier: MIT
"""The auth routes through the gateway against the running suite (API.md "Auth", "Users" without
the invitation routes, "Roles"): exact shapes, status codes and DRF / simplejwt error bodies,
tenant scoping both ways (by list and by id), refresh rotation and reuse (family revoked),
immediate revocation after a role change, a deactivation or a refresh token's reuse (the old
access tokens are refused at once, the refresh brings the new roles), the login throttle (429 with Retry-After, reset by a
success), tokens interchangeable with PyJWT (Debian python3-jwt) under the suite's shared key, and
the audit events on ev:audit (decoded with python3-msgpack).

Until the tenant service exists, each test class makes its own tenants' users with
`adi-admin create-user` (ids and e-mails are random per run, so reruns and other tests never
collide). The suite hashes with PASSWORD_ITERATIONS=1000 unless set; the CLI gets the same.
"""
import os
import subprocess
import time
import unittest
import uuid

import jwt
import msgpack

from gw_e2e import Redis, env, http, wait_for

PASSWORD = "e2e-password-1"
NO_CREDS = {"detail": "Authentication credentials were not provided."}
BAD_LOGIN = {"detail": "No active account found with the given credentials"}
NOT_ADMIN = {"detail": "You must be a tenant admin to perform this action."}
NOT_FOUND = {"detail": "Not found."}
OTHER_TENANT = {"user": ["The selected user does not belong to this tenant."]}
USER_KEYS = {"id", "email", "first_name", "last_name", "tenant", "timezone", "roles"}


def admin_cli(*args, check=True):
    """Runs adi-admin with the suite's settings (the password comes from ADI_E2E_PASSWORD)."""
    e = dict(os.environ)
    e.setdefault("PASSWORD_ITERATIONS", "1000")
    e["ADI_E2E_PASSWORD"] = PASSWORD
    p = subprocess.run([os.path.join(env("ADI_BIN_DIR"), "adi-admin"), *args], env=e,
                       capture_output=True, text=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"adi-admin {' '.join(args)}: {p.returncode} {p.stderr}")
    return p


def make_user(tenant, tag, role=None, superuser=False):
    """A user of `tenant` (None: a superuser without tenant) with PASSWORD; returns (id, email)."""
    email = f"{tag}-{uuid.uuid4().hex[:10]}@e2e.example"
    if tenant is None:
        out = admin_cli("createsuperuser", "--email", email, "--password-env", "ADI_E2E_PASSWORD")
    else:
        args = ["create-user", "--tenant", tenant, "--email", email, "--password-env",
                "ADI_E2E_PASSWORD", "--first-name", tag.capitalize()]
        if role:
            args += ["--role", role]
        if superuser:
            args.append("--superuser")
        out = admin_cli(*args)
    return out.stdout.strip(), email


def login(email, password=PASSWORD, path="/api/auth/login/"):
    return http("POST", path, {"username": email, "password": password})


def tokens(email):
    r = login(email)
    assert r.status == 200, r
    return r.json()


def bearer(access):
    return {"Authorization": f"Bearer {access}"}


def get(path, access, **kw):
    return http("GET", path, headers=bearer(access), **kw)


def key():
    return env("JWT_SIGNING_KEY")


def pyjwt_claims(token):
    return jwt.decode(token, key(), algorithms=["HS256"])


def token_not_valid(r):
    """The simplejwt 401 of a refused Bearer token."""
    body = r.json()
    return (r.status == 401 and body.get("code") == "token_not_valid"
            and body.get("detail") == "Given token not valid for any token type")


def audit_events(resource_id):
    """Every ev:audit entry about `resource_id`, decoded."""
    out = []
    with Redis() as red:
        for _, fields in red.command("XRANGE", "ev:audit", "-", "+"):
            ev = msgpack.unpackb(fields[1], raw=False)
            if ev.get("resource_id") != resource_id:
                continue
            meta = ev.get("metadata")
            if isinstance(meta, (bytes, bytearray)):
                ev["metadata"] = msgpack.unpackb(meta, raw=False)
            out.append(ev)
    return out


class Tenants(unittest.TestCase):
    """Two tenants, each with an ADMIN and a VIEWER, and a superuser without tenant."""

    @classmethod
    def setUpClass(cls):
        cls.tenant_a = str(uuid.uuid4())
        cls.tenant_b = str(uuid.uuid4())
        cls.admin_a, cls.admin_a_email = make_user(cls.tenant_a, "admina", "ADMIN")
        cls.viewer_a, cls.viewer_a_email = make_user(cls.tenant_a, "viewera", "VIEWER")
        cls.admin_b, cls.admin_b_email = make_user(cls.tenant_b, "adminb", "ADMIN")
        cls.root, cls.root_email = make_user(None, "root")
        cls.tok = {}
        for name in ("admin_a", "viewer_a", "admin_b", "root"):
            cls.tok[name] = tokens(getattr(cls, name + "_email"))["access"]


class LoginAndTokens(Tenants):
    def test_login_shape(self):
        r = login(self.viewer_a_email.upper())  # e-mails match case-insensitively
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(set(body), {"refresh", "access", "tenant_id", "user"})
        self.assertEqual(body["tenant_id"], self.tenant_a)
        user = body["user"]
        self.assertEqual(set(user), USER_KEYS)
        self.assertEqual(user, {"id": self.viewer_a, "email": self.viewer_a_email,
                                "first_name": "Viewera", "last_name": "",
                                "tenant": self.tenant_a, "timezone": "America/Jamaica",
                                "roles": ["VIEWER"]})

    def test_token_shape(self):
        r = login(self.viewer_a_email, path="/api/token/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json()), {"refresh", "access"})

    def test_tokens_never_kept_under_an_idempotency_key(self):
        # A login retried with its Idempotency-Key runs again (a fresh pair), because responses
        # that carry tokens are not stored in Redis; the first pair is found nowhere in Redis.
        key = {"Idempotency-Key": "login-" + uuid.uuid4().hex}
        body = {"username": self.viewer_a_email, "password": PASSWORD}
        first = http("POST", "/api/auth/login/", body, headers=key)
        self.assertEqual(first.status, 200, first)
        again = http("POST", "/api/auth/login/", body, headers=key)
        self.assertEqual(again.status, 200, again)
        self.assertIsNone(again.header("idempotent-replayed"))
        self.assertNotEqual(first.json()["refresh"], again.json()["refresh"])
        with Redis() as rd:
            cursor, found = "0", []
            while True:
                cursor, keys = rd.command("SCAN", cursor, "MATCH", "gw:{idem}:*", "COUNT", "1000")
                for k in keys:
                    t = rd.command("TYPE", k)
                    if (t.decode() if isinstance(t, bytes) else t) == "string":
                        v = rd.command("GET", k) or b""
                        v = v if isinstance(v, bytes) else str(v).encode()
                        if first.json()["refresh"].encode() in v:
                            found.append(k)
                cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
                if cursor == "0":
                    break
        self.assertEqual(found, [])

    def test_wrong_login_is_one_answer(self):
        _, email = make_user(self.tenant_a, "wrong")
        wrong_pw = login(email, "not-the-password")
        no_user = login(f"nobody-{uuid.uuid4().hex}@e2e.example")
        for r in (wrong_pw, no_user, login(email, "nope", path="/api/token/")):
            self.assertEqual(r.status, 401, r)
            self.assertEqual(r.json(), BAD_LOGIN)
        self.assertEqual(wrong_pw.body, no_user.body)

    def test_login_validation(self):
        r = http("POST", "/api/auth/login/", {})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"username": ["This field is required."],
                                    "password": ["This field is required."]})

    def test_audit_login(self):
        uid, email = make_user(self.tenant_b, "audited")
        self.assertEqual(login(email).status, 200)
        evs = [e for e in audit_events(uid) if e["action"] == "login"]
        self.assertEqual(len(evs), 1, evs)
        ev = evs[0]
        self.assertEqual(ev["resource_type"], "auth")
        self.assertEqual(ev["tenant_id"], self.tenant_b)
        self.assertEqual(ev["user_id"], uid)
        self.assertEqual(ev["user_email"], email)
        self.assertIsInstance(ev["created_at_us"], int)
        uuid.UUID(ev["id"])

    def test_claims_read_by_pyjwt(self):
        body = tokens(self.admin_a_email)
        access = pyjwt_claims(body["access"])
        refresh = pyjwt_claims(body["refresh"])
        self.assertEqual(jwt.get_unverified_header(body["access"])["alg"], "HS256")
        self.assertEqual(access["token_type"], "access")
        self.assertEqual(refresh["token_type"], "refresh")
        for c in (access, refresh):
            self.assertEqual(c["user_id"], self.admin_a)
            self.assertEqual(c["tenant_id"], self.tenant_a)
            self.assertEqual(c["roles"], ["ADMIN"])
            self.assertRegex(c["jti"], r"^[0-9a-f]{32}$")
        self.assertEqual(access["exp"] - access["iat"], 1800)
        self.assertEqual(refresh["exp"] - refresh["iat"], 86400)
        with self.assertRaises(jwt.InvalidSignatureError):
            jwt.decode(body["access"], "another-key", algorithms=["HS256"])

    def test_gateway_accepts_pyjwt_tokens(self):
        now = int(time.time())
        claims = {"token_type": "access", "exp": now + 300, "iat": now, "jti": uuid.uuid4().hex,
                  "user_id": self.viewer_a, "tenant_id": self.tenant_a, "roles": ["VIEWER"]}
        r = get("/api/me/", jwt.encode(claims, key(), algorithm="HS256"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["user"]["id"], self.viewer_a)
        refused = [
            jwt.encode(claims, "wrong-key", algorithm="HS256"),
            jwt.encode(dict(claims, exp=now - 10, iat=now - 100), key(), algorithm="HS256"),
            jwt.encode(dict(claims, token_type="refresh"), key(), algorithm="HS256"),
            jwt.encode(claims, None, algorithm="none"),
        ]
        for tok in refused:
            r = get("/api/me/", tok)
            self.assertTrue(token_not_valid(r), r)
            self.assertEqual(r.header("www-authenticate"), 'Bearer realm="api"')


    def test_refresh_accepts_pyjwt_refresh_tokens(self):
        # A refresh token minted by PyJWT (or the Django version) with the same claims and key
        # is accepted as simplejwt would, and rotates; presented again, it is a reuse.
        # (A user of its own: the reuse ends every token of the user.)
        uid, _ = make_user(self.tenant_a, "minted", "VIEWER")
        now = int(time.time())
        claims = {"token_type": "refresh", "exp": now + 3600, "iat": now,
                  "jti": uuid.uuid4().hex, "user_id": uid, "tenant_id": self.tenant_a,
                  "roles": ["VIEWER"]}
        minted = jwt.encode(claims, key(), algorithm="HS256")
        r = http("POST", "/api/token/refresh/", {"refresh": minted})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json()), {"access", "refresh"})
        self.assertEqual(get("/api/me/", r.json()["access"]).json()["user"]["id"], uid)
        # Its successor rotated in turn, so the grace for two tabs does not apply: a reuse.
        r = http("POST", "/api/token/refresh/", {"refresh": r.json()["refresh"]})
        self.assertEqual(r.status, 200, r)
        again = http("POST", "/api/token/refresh/", {"refresh": minted})
        self.assertEqual(again.status, 401, again)
        self.assertEqual(again.json()["code"], "token_not_valid")


class Me(Tenants):
    def test_me(self):
        r = get("/api/me/", self.tok["viewer_a"])
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(set(body), {"user", "tenant_id", "tenant"})
        self.assertEqual(body["tenant_id"], self.tenant_a)
        self.assertEqual(body["user"]["id"], self.viewer_a)
        self.assertEqual(body["user"]["roles"], ["VIEWER"])

    def test_no_credentials(self):
        for headers in ({}, {"Authorization": ""}):
            r = http("GET", "/api/me/", headers=headers)
            self.assertEqual(r.status, 401, r)
            self.assertEqual(r.json(), NO_CREDS)
            self.assertEqual(r.header("www-authenticate"), 'Bearer realm="api"')
        # "Bearer" without a token: simplejwt's bad_authorization_header.
        r = http("GET", "/api/me/", headers={"Authorization": "Bearer "})
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json()["code"], "bad_authorization_header")

    def test_bad_token(self):
        r = get("/api/me/", "not.a.token")
        self.assertTrue(token_not_valid(r), r)
        self.assertEqual(r.json()["messages"], [{"token_class": "AccessToken",
                                                 "token_type": "access",
                                                 "message": "Token is invalid or expired"}])
        refresh = tokens(self.viewer_a_email)["refresh"]
        self.assertTrue(token_not_valid(get("/api/me/", refresh)))

    def test_tenant_header_only_for_superusers(self):
        hdr = {"X-Tenant-Id": self.tenant_b}
        r = http("GET", "/api/me/", headers={**bearer(self.tok["viewer_a"]), **hdr})
        self.assertEqual(r.json()["tenant_id"], self.tenant_a)
        r = get("/api/me/", self.tok["root"])
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.json()["tenant_id"])
        self.assertIsNone(r.json()["user"]["tenant"])
        r = http("GET", "/api/me/", headers={**bearer(self.tok["root"]), **hdr})
        self.assertEqual(r.json()["tenant_id"], self.tenant_b)


class Users(Tenants):
    def test_list_is_the_callers_tenant_ordered(self):
        body = get("/api/users/", self.tok["viewer_a"]).json()
        ids = [u["id"] for u in body]
        self.assertIn(self.admin_a, ids)
        self.assertIn(self.viewer_a, ids)
        self.assertNotIn(self.admin_b, ids)
        self.assertNotIn(self.root, ids)
        self.assertEqual([u["email"] for u in body], sorted(u["email"] for u in body))
        for u in body:
            self.assertEqual(set(u), USER_KEYS)
            self.assertEqual(u["tenant"], self.tenant_a)
        ids_b = [u["id"] for u in get("/api/users/", self.tok["admin_b"]).json()]
        self.assertIn(self.admin_b, ids_b)
        self.assertNotIn(self.admin_a, ids_b)

    def test_get_by_id(self):
        r = get(f"/api/users/{self.admin_a}/", self.tok["viewer_a"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["roles"], ["ADMIN"])
        for path, who in ((f"/api/users/{self.admin_b}/", "viewer_a"),
                          (f"/api/users/{self.admin_a}/", "admin_b"),
                          (f"/api/users/{uuid.uuid4()}/", "viewer_a"),
                          ("/api/users/not-a-uuid/", "viewer_a")):
            r = get(path, self.tok[who])
            self.assertEqual(r.status, 404, (path, r))
            self.assertEqual(r.json(), NOT_FOUND)

    def test_create(self):
        email = f"new-{uuid.uuid4().hex[:8]}@e2e.example"
        body = {"email": email, "password": "new-user-pw", "first_name": "New"}
        r = http("POST", "/api/users/", body, headers=bearer(self.tok["admin_a"]))
        self.assertEqual(r.status, 201, r)
        created = r.json()
        self.assertEqual(set(created), {"id", "email", "first_name", "last_name", "timezone"})
        self.assertEqual(created["email"], email)
        self.assertEqual(created["timezone"], "America/Jamaica")
        self.assertEqual(login(email, "new-user-pw").json()["user"]["id"], created["id"])
        r = http("POST", "/api/users/", dict(body, email=email.upper()),
                 headers=bearer(self.tok["admin_a"]))
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"email": ["user with this email already exists."]})
        # Another tenant may have the same e-mail.
        r = http("POST", "/api/users/", body, headers=bearer(self.tok["admin_b"]))
        self.assertEqual(r.status, 201, r)

    def test_create_errors(self):
        body = {"email": f"x-{uuid.uuid4().hex[:8]}@e2e.example", "password": "long-enough"}
        r = http("POST", "/api/users/", body, headers=bearer(self.tok["viewer_a"]))
        self.assertEqual(r.status, 403, r)
        self.assertEqual(r.json(), NOT_ADMIN)
        r = http("POST", "/api/users/", body)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json(), NO_CREDS)
        r = http("POST", "/api/users/", {"email": "nope", "password": "short"},
                 headers=bearer(self.tok["admin_a"]))
        self.assertEqual(r.status, 400, r)
        self.assertEqual(r.json(), {"email": ["Enter a valid email address."],
                                    "password": ["Ensure this field has at least 8 characters."]})
        r = http("POST", "/api/users/", {"email": "blank@e2e.example", "password": " " * 8},
                 headers=bearer(self.tok["admin_a"]))
        self.assertEqual((r.status, r.json()), (400, {"password": ["This field may not be blank."]}))

    def test_create_trims_like_drf(self):
        # DRF's CharField and EmailField strip surrounding whitespace before their checks.
        email = f"trim-{uuid.uuid4().hex[:8]}@e2e.example"
        r = http("POST", "/api/users/", {"email": f"  {email} ", "password": " long-enough ",
                                         "first_name": " Sp ", "last_name": "\tLace\n"},
                 headers=bearer(self.tok["admin_a"]))
        self.assertEqual(r.status, 201, r)
        self.assertEqual((r.json()["email"], r.json()["first_name"], r.json()["last_name"]),
                         (email, "Sp", "Lace"))
        self.assertEqual(login(email, "long-enough").status, 200)


class AdminCli(Tenants):
    def test_errors(self):
        # The operators' commands refuse bad input with a message and an exit code (2 usage,
        # 1 the work failed) and never print the password.
        def fails(code, want, *args):
            p = admin_cli(*args, check=False)
            self.assertEqual(p.returncode, code, (args, p.stdout, p.stderr))
            self.assertIn(want, p.stderr, args)
            self.assertNotIn(PASSWORD, p.stdout + p.stderr)

        pw = ("--password-env", "ADI_E2E_PASSWORD")
        fails(1, "a user with this e-mail already exists in that tenant",
              "create-user", "--tenant", self.tenant_a, "--email", self.viewer_a_email, *pw)
        fails(1, "a user with this e-mail already exists",
              "createsuperuser", "--email", self.root_email, *pw)
        fails(2, "email: Enter a valid email address.",
              "create-user", "--tenant", self.tenant_a, "--email", "not-an-email", *pw)
        fails(2, "ADI_E2E_UNSET_VARIABLE", "create-user", "--tenant", self.tenant_a,
              "--email", "unset@e2e.example", "--password-env", "ADI_E2E_UNSET_VARIABLE")
        fails(2, "--password-env VAR is required",
              "create-user", "--tenant", self.tenant_a, "--email", "nopw@e2e.example")
        fails(1, "no user has this e-mail", "deactivate-user", "--email",
              f"nobody-{uuid.uuid4().hex[:8]}@e2e.example")


class Roles(Tenants):
    def test_list_is_the_callers_tenant(self):
        r = get("/api/user-roles/", self.tok["viewer_a"])
        self.assertEqual(r.status, 200, r)
        rows = r.json()
        self.assertTrue(rows)
        for row in rows:
            self.assertEqual(set(row), {"id", "user", "tenant", "role", "created_at"})
            self.assertEqual(row["tenant"], self.tenant_a)
        self.assertIn((self.admin_a, "ADMIN"), [(x["user"], x["role"]) for x in rows])
        self.assertNotIn(self.admin_b, [x["user"] for x in rows])

    def test_create_idempotent_and_errors(self):
        uid, _ = make_user(self.tenant_a, "rolecreate")
        hdr = bearer(self.tok["admin_a"])
        r1 = http("POST", "/api/user-roles/", {"user": uid, "role": "ANALYST"}, headers=hdr)
        self.assertEqual(r1.status, 201, r1)
        row = r1.json()
        self.assertEqual({k: row[k] for k in ("user", "tenant", "role")},
                         {"user": uid, "tenant": self.tenant_a, "role": "ANALYST"})
        self.assertRegex(row["created_at"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?[+-]\d\d:\d\d$")
        r2 = http("POST", "/api/user-roles/", {"user": uid, "role": "ANALYST"}, headers=hdr)
        self.assertEqual(r2.status, 201, r2)
        self.assertEqual(r2.json(), row)
        r = http("POST", "/api/user-roles/", {"user": self.admin_b, "role": "VIEWER"}, headers=hdr)
        self.assertEqual((r.status, r.json()), (400, OTHER_TENANT))
        r = http("POST", "/api/roles/assign/", {"user": str(uuid.uuid4()), "role": "VIEWER"},
                 headers=hdr)
        self.assertEqual((r.status, r.json()), (400, OTHER_TENANT))
        r = http("POST", "/api/user-roles/", {"user": uid, "role": "OWNER"}, headers=hdr)
        self.assertEqual((r.status, r.json()), (400, {"role": ['"OWNER" is not a valid choice.']}))
        r = http("POST", "/api/user-roles/", {"user": uid, "role": "VIEWER"},
                 headers=bearer(self.tok["viewer_a"]))
        self.assertEqual((r.status, r.json()), (403, NOT_ADMIN))

    def test_assign_and_delete_with_audit(self):
        uid, _ = make_user(self.tenant_a, "roleaudit")
        hdr = bearer(self.tok["admin_a"])
        r = http("POST", "/api/roles/assign/", {"user": uid, "role": "VIEWER"}, headers=hdr)
        self.assertEqual(r.status, 201, r)
        rid = r.json()["id"]
        ev = [e for e in audit_events(uid) if e["action"] == "role_assigned"]
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual(ev[0]["resource_type"], "role")
        self.assertEqual(ev[0]["metadata"], {"role": "VIEWER"})
        self.assertEqual(ev[0]["user_id"], self.admin_a)
        self.assertEqual(ev[0]["user_email"], self.admin_a_email)
        self.assertEqual(ev[0]["tenant_id"], self.tenant_a)

        r = http("DELETE", f"/api/user-roles/{rid}/", headers=bearer(self.tok["admin_b"]))
        self.assertEqual((r.status, r.json()), (404, NOT_FOUND))
        r = http("DELETE", f"/api/user-roles/{rid}/", headers=bearer(self.tok["viewer_a"]))
        self.assertEqual((r.status, r.json()), (403, NOT_ADMIN))
        r = http("DELETE", f"/api/user-roles/{rid}/", headers=hdr)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        ev = [e for e in audit_events(uid) if e["action"] == "role_revoked"]
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual(ev[0]["metadata"], {"role": "VIEWER"})
        r = http("DELETE", f"/api/user-roles/{rid}/", headers=hdr)
        self.assertEqual((r.status, r.json()), (404, NOT_FOUND))
        r = http("DELETE", "/api/user-roles/not-a-uuid/", headers=hdr)
        self.assertEqual((r.status, r.json()), (404, NOT_FOUND))


class Refresh(Tenants):
    def refresh(self, token):
        return http("POST", "/api/token/refresh/", {"refresh": token})

    def test_rotation_and_reuse(self):
        t1 = tokens(self.viewer_a_email)["refresh"]
        r = self.refresh(t1)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json()), {"access", "refresh"})
        t2 = r.json()["refresh"]
        self.assertNotEqual(pyjwt_claims(t1)["jti"], pyjwt_claims(t2)["jti"])
        self.assertEqual(get("/api/me/", r.json()["access"]).status, 200)
        t3 = self.refresh(t2).json()["refresh"]
        # t1 again: its successor was rotated too, so this is a reuse: the family is revoked.
        blacklisted = {"detail": "Token is blacklisted", "code": "token_not_valid"}
        for t in (t1, t3):
            r = self.refresh(t)
            self.assertEqual((r.status, r.json()), (401, blacklisted))

    def test_grace_for_the_preceding_token(self):
        t1 = tokens(self.viewer_a_email)["refresh"]
        t2 = self.refresh(t1).json()["refresh"]
        again = self.refresh(t1)  # e.g. a second tab, within REFRESH_REUSE_GRACE_S
        self.assertEqual(again.status, 200, again)
        self.assertEqual(self.refresh(t2).status, 200)

    def test_refused_tokens(self):
        body = tokens(self.viewer_a_email)
        r = self.refresh(body["access"])
        self.assertEqual((r.status, r.json()),
                         (401, {"detail": "Token has wrong type", "code": "token_not_valid"}))
        r = self.refresh("garbage")
        self.assertEqual((r.status, r.json()),
                         (401, {"detail": "Token is invalid or expired",
                                "code": "token_not_valid"}))
        r = http("POST", "/api/token/refresh/", {})
        self.assertEqual((r.status, r.json()), (400, {"refresh": ["This field is required."]}))


class Revocation(Tenants):
    def test_role_revoked_takes_effect_at_once(self):
        uid, email = make_user(self.tenant_a, "revoked", "ADMIN")
        pair = tokens(email)
        hdr = bearer(pair["access"])
        self.assertEqual(get("/api/user-roles/", pair["access"]).status, 200)
        rows = get("/api/user-roles/", self.tok["admin_a"]).json()
        rid = next(x["id"] for x in rows if x["user"] == uid and x["role"] == "ADMIN")
        r = http("DELETE", f"/api/user-roles/{rid}/", headers=bearer(self.tok["admin_a"]))
        self.assertEqual(r.status, 204, r)
        # The old access token is refused as soon as the gateway has read ev:auth.
        wait_for(lambda: token_not_valid(get("/api/me/", pair["access"])),
                 "the old access token to be refused")
        r = http("POST", "/api/users/", {"email": "x@e2e.example", "password": "long-enough"},
                 headers=hdr)
        self.assertEqual(r.status, 401, r)
        # The refresh gives the new roles, and the new access token works.
        r = http("POST", "/api/token/refresh/", {"refresh": pair["refresh"]})
        self.assertEqual(r.status, 200, r)
        new = r.json()["access"]
        self.assertEqual(pyjwt_claims(new)["roles"], [])
        self.assertEqual(get("/api/me/", new).status, 200)
        r = http("POST", "/api/users/", {"email": "x@e2e.example", "password": "long-enough"},
                 headers=bearer(new))
        self.assertEqual((r.status, r.json()), (403, NOT_ADMIN))

    def test_deactivated_user(self):
        uid, email = make_user(self.tenant_b, "deactivated", "VIEWER")
        pair = tokens(email)
        self.assertEqual(get("/api/me/", pair["access"]).status, 200)
        out = admin_cli("deactivate-user", "--email", email, "--tenant", self.tenant_b)
        self.assertIn(uid, out.stdout)
        wait_for(lambda: token_not_valid(get("/api/me/", pair["access"])),
                 "the deactivated user's access token to be refused")
        # simplejwt >= 5.3.1 checks the account before the blacklist: its message, though
        # deactivate-user revoked the refresh token too.
        r = http("POST", "/api/token/refresh/", {"refresh": pair["refresh"]})
        self.assertEqual((r.status, r.json()),
                         (401, {"detail": "No active account found for the given token.",
                                "code": "token_not_valid"}))
        self.assertEqual(login(email).json(), BAD_LOGIN)

    def test_refresh_reuse_revokes_the_access_tokens(self):
        # A rotated refresh token presented again means it was copied: the family is revoked and
        # every access token issued so far (the copier's too) is refused at once.
        _, email = make_user(self.tenant_a, "reused", "VIEWER")
        first = tokens(email)
        second = http("POST", "/api/token/refresh/", {"refresh": first["refresh"]})
        self.assertEqual(second.status, 200, second)
        third = http("POST", "/api/token/refresh/", {"refresh": second.json()["refresh"]})
        self.assertEqual(third.status, 200, third)
        issued = [first["access"], second.json()["access"], third.json()["access"]]
        for access in issued:
            self.assertEqual(get("/api/me/", access).status, 200)
        r = http("POST", "/api/token/refresh/", {"refresh": first["refresh"]})
        self.assertEqual((r.status, r.json()),
                         (401, {"detail": "Token is blacklisted", "code": "token_not_valid"}))
        for access in issued:
            wait_for(lambda a=access: token_not_valid(get("/api/me/", a)),
                     "an access token issued before the reuse to be refused")
        r = http("POST", "/api/token/refresh/", {"refresh": third.json()["refresh"]})
        self.assertEqual((r.status, r.json()),
                         (401, {"detail": "Token is blacklisted", "code": "token_not_valid"}))
        # A new login starts afresh.
        self.assertEqual(get("/api/me/", tokens(email)["access"]).status, 200)


class Throttle(Tenants):
    def test_lockout(self):
        _, email = make_user(self.tenant_a, "locked")
        max_failures = 5  # LOGIN_MAX_FAILURES default
        for _ in range(max_failures):
            self.assertEqual(login(email, "wrong-password").status, 401)
        r = login(email, "wrong-password")
        self.assertEqual(r.status, 429, r)
        n = int(r.header("retry-after"))
        self.assertGreater(n, 0)
        self.assertEqual(r.json(),
                         {"detail": f"Too many failed login attempts. Try again in {n} seconds."})
        # Locked: even the right password is refused, on both login routes.
        self.assertEqual(login(email).status, 429)
        self.assertEqual(login(email, path="/api/token/").status, 429)
        # Other accounts are not affected.
        self.assertEqual(login(self.viewer_a_email).status, 200)

    def test_success_resets_the_count(self):
        _, email = make_user(self.tenant_a, "reset")
        for _ in range(2):
            for _ in range(4):
                self.assertEqual(login(email, "wrong-password").status, 401)
            self.assertEqual(login(email).status, 200)
        self.assertEqual(login(email, "wrong-password").status, 401)


if __name__ == "__main__":
    unittest.main()
