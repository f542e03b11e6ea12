# SPDX-License-Identifier: MIT
"""The gateway's token checks and login throttle, end to end.

Against the suite's gateway (tokens minted here with PyJWT and the run's JWT_SIGNING_KEY; every
refusal is the gateway's own, the request never reaches auth): no credentials (401 body and
WWW-Authenticate), a malformed header, alg none, a wrong key, an expired token, a refresh token
presented as access, RS256 tokens (a real one and an algorithm-confusion forgery), a tampered
payload, the ADMIN route with a VIEWER token (403), public routes ignoring Authorization, and
immediate revocation through an ev:auth event XADDed here (encoded with python3-msgpack). The
login throttle runs against the real auth service once it answers wrong credentials with 401.

Against gateways of the test's own on a private Redis, where the test plays the auth service:
the principal and client address in the envelope, X-Tenant-Id for superusers only, ev:auth read
back at start-up, followed live and again after a Redis restart, and the login throttle in full
(per account and per address, 429 with Retry-After without calling auth, doubling, reset on
success, attempts that were not failures taken back).
"""
import base64
import hashlib
import hmac
import json
import shutil
import tempfile
import time
import unittest
import uuid

import jwt  # Debian python3-jwt
import msgpack  # Debian python3-msgpack
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gw_e2e import (Call, FakeService, PrivateGateway, PrivateRedis, Redis, effective_config, env,
                    http, unpack_raw_field, wait_for)

NO_CREDS = {"detail": "Authentication credentials were not provided."}
NOT_ADMIN = {"detail": "You must be a tenant admin to perform this action."}
BAD_HEADER = {"detail": "Authorization header must contain two space-delimited values",
              "code": "bad_authorization_header"}
WWW = 'Bearer realm="api"'


def invalid(message="Token is invalid or expired"):
    return {"detail": "Given token not valid for any token type", "code": "token_not_valid",
            "messages": [{"token_class": "AccessToken", "token_type": "access",
                          "message": message}]}


def claims(**over):
    now = int(time.time())
    c = {"token_type": "access", "exp": now + 600, "iat": now, "jti": uuid.uuid4().hex,
         "user_id": str(uuid.uuid4()), "tenant_id": str(uuid.uuid4()), "roles": ["VIEWER"]}
    c.update(over)
    return c


def mint(key, **over):
    return jwt.encode(claims(**over), key, algorithm="HS256")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def auth_event(user_id, version, kind="roles_changed", tenant_id=""):
    return msgpack.packb({"user_id": user_id, "tenant_id": tenant_id, "kind": kind,
                          "version": version})


def account_key(username):
    return "gw:{login}:a:" + hashlib.sha256(username.lower().encode()).hexdigest()


class SuiteGateway(unittest.TestCase):
    """Refusals by the suite's gateway: none of these requests reaches a service."""

    @classmethod
    def setUpClass(cls):
        cls.key = env("JWT_SIGNING_KEY")

    def refused(self, headers, body, path="/api/me/", method="GET", status=401):
        r = http(method, path, headers=headers, body={} if method == "POST" else None)
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.json(), body)
        if status == 401:
            self.assertEqual(r.header("www-authenticate"), WWW)
        else:
            self.assertIsNone(r.header("www-authenticate"))
        self.assertEqual(r.header("content-type"), "application/json")
        return r

    def test_no_credentials(self):
        self.refused({}, NO_CREDS)
        self.refused({"Authorization": ""}, NO_CREDS)
        self.refused({"Authorization": "   "}, NO_CREDS)
        self.refused({"Authorization": "Basic dXNlcjpwYXNz"}, NO_CREDS)
        self.refused({}, NO_CREDS, path="/api/users/")
        self.refused({}, NO_CREDS, path="/api/users/", method="POST")
        self.refused({}, NO_CREDS, path="/api/user-roles/42/", method="DELETE")
        # Without the trailing slash: the same route, the same answer.
        self.refused({}, NO_CREDS, path="/api/me")

    def test_malformed_header(self):
        self.refused({"Authorization": "Bearer"}, BAD_HEADER)
        self.refused({"Authorization": "Bearer a b"}, BAD_HEADER)

    def test_bad_tokens(self):
        good = claims()
        cases = {
            "garbage": "not-a-token",
            "two segments": "abc.def",
            "alg none": jwt.encode(good, None, algorithm="none"),
            "alg none, key-less signature": "%s.%s." % (
                b64url(b'{"alg":"none","typ":"JWT"}'), b64url(json.dumps(good).encode())),
            "wrong key": jwt.encode(good, "not-the-key", algorithm="HS256"),
            "expired": mint(self.key, exp=int(time.time()) - 5, iat=int(time.time()) - 600),
            "issued in the future": mint(self.key, iat=int(time.time()) + 3600),
            "HS512": jwt.encode(good, self.key, algorithm="HS512"),
            "no user_id": jwt.encode({k: v for k, v in good.items() if k != "user_id"},
                                     self.key, algorithm="HS256"),
            "user_id not a uuid": mint(self.key, user_id="42"),
        }
        for name, token in cases.items():
            with self.subTest(name):
                self.refused(bearer(token), invalid())

    def test_tampered_payload(self):
        token = mint(self.key, roles=["VIEWER"])
        head, _, sig = token.split(".")
        forged = claims(roles=["ADMIN"])
        self.refused(bearer(f"{head}.{b64url(json.dumps(forged).encode())}.{sig}"), invalid())

    def test_refresh_token_as_access(self):
        self.refused(bearer(mint(self.key, token_type="refresh")),
                     invalid("Token has wrong type"))

    def test_rs256_tokens_refused(self):
        # A genuine RS256 token from a key the gateway never saw.
        priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
        self.refused(bearer(jwt.encode(claims(), pem, algorithm="RS256")), invalid())
        # Algorithm confusion: an "RS256" header over an HMAC made with the HS256 secret.
        signing_input = "%s.%s" % (b64url(b'{"alg":"RS256","typ":"JWT"}'),
                                   b64url(json.dumps(claims()).encode()))
        mac = hmac.new(self.key.encode(), signing_input.encode(), hashlib.sha256).digest()
        self.refused(bearer(f"{signing_input}.{b64url(mac)}"), invalid())

    def test_admin_route_needs_admin(self):
        viewer = mint(self.key, roles=["VIEWER", "ANALYST"])
        for method, path in (("POST", "/api/users/"), ("POST", "/api/user-roles/"),
                             ("POST", "/api/roles/assign/"), ("DELETE", "/api/user-roles/1/")):
            with self.subTest(path=path, method=method):
                self.refused(bearer(viewer), NOT_ADMIN, path=path, method=method, status=403)
        self.refused(bearer(mint(self.key, roles=[])), NOT_ADMIN, path="/api/users/",
                     method="POST", status=403)

    def test_public_routes_ignore_authorization(self):
        for headers in ({"Authorization": "Bearer garbage"}, {"Authorization": "Bearer"}):
            r = http("GET", "/api/health/version/", headers=headers)
            self.assertEqual(r.status, 200)
            r = http("POST", "/api/token/refresh/", body={}, headers=headers)
            self.assertNotEqual(r.status, 401, r)  # auth's own validation answers, not the gateway

    def test_revocation_through_ev_auth(self):
        user = str(uuid.uuid4())
        old = mint(self.key, user_id=user, ver=3)
        ops = "http://127.0.0.1:%s" % env("ADI_OPS_PORT_GATEWAY")
        threads = int(effective_config().get("GATEWAY_THREADS", "2"))

        def applied():
            text = http("GET", "/metrics", base=ops).body.decode()
            out = {}
            for line in text.splitlines():
                if line.startswith("adi_gateway_auth_events_total{"):
                    labels, _, value = line.rpartition(" ")
                    out[labels] = float(value)
            return out

        def accepted(token):
            r = http("GET", "/api/me/", headers=bearer(token))
            return not (r.status == 401 and r.json().get("code") == "token_not_valid"
                        and r.json().get("detail") == invalid()["detail"])

        self.assertTrue(accepted(old))
        before = applied()
        with Redis() as r:
            r.command("XADD", "ev:auth", "*", "m", auth_event(user, 4))
        def everywhere():
            now = applied()
            return len(now) == threads and all(v > before.get(k, 0) for k, v in now.items())
        wait_for(everywhere, "every gateway thread to apply the ev:auth event")
        for _ in range(threads * 2):  # whichever thread serves it
            self.refused(bearer(old), invalid())
        self.assertTrue(accepted(mint(self.key, user_id=user, ver=4)))
        self.assertTrue(accepted(mint(self.key, user_id=user, ver=5)))
        # Another user's tokens are not affected.
        self.assertTrue(accepted(mint(self.key, ver=0)))


class SuiteLoginThrottle(unittest.TestCase):
    """The throttle with the real auth service answering wrong credentials."""

    def test_lockout_after_failed_logins(self):
        username = f"nobody-{uuid.uuid4().hex[:12]}@example.com"
        first = http("POST", "/api/auth/login/", body={"username": username, "password": "x"})
        if first.status != 401:
            self.skipTest(f"auth does not answer logins with 401 yet ({first.status})")
        cfg = effective_config()
        limit = int(cfg.get("LOGIN_MAX_FAILURES", "5"))
        lockout = int(cfg.get("LOGIN_LOCKOUT_S", "60"))
        try:
            for i in range(limit - 1):
                path = "/api/token/" if i % 2 else "/api/auth/login/"
                r = http("POST", path, body={"username": username.upper(), "password": "y"})
                self.assertEqual(r.status, 401, r)
            r = http("POST", "/api/token/", body={"username": username, "password": "z"})
            self.assertEqual(r.status, 429, r)
            retry = int(r.header("retry-after"))
            self.assertTrue(0 < retry <= lockout, retry)
            self.assertEqual(r.json(), {"detail": "Too many failed login attempts. Try again in "
                                                  f"{retry} seconds."})
            # Another account from the same address is not locked.
            r = http("POST", "/api/auth/login/",
                     body={"username": "x" + username, "password": "y"})
            self.assertEqual(r.status, 401, r)
        finally:
            with Redis() as rd:
                rd.command("DEL", account_key(username), account_key("x" + username))


# ---- private gateways ------------------------------------------------------------------------

KEY = "private-gateway-auth-test-key"


class PrivateCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="gw-auth-", dir=env("ADI_TEST_DIR"))
        self.redis = PrivateRedis(self.dir)
        self.redis.start()
        self.gateways = []
        self.fakes = []

    def tearDown(self):
        reports = []
        for gw in self.gateways:
            if gw.proc.poll() is None:
                self.assertEqual(gw.stop(), 0)
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
        settings.setdefault("JWT_SIGNING_KEY", KEY)
        gw = PrivateGateway(self.dir, self.redis.url, **settings)
        self.gateways.append(gw)
        wait_for(gw.ready, "the private gateway to be ready")
        return gw

    def fake(self, name="auth"):
        f = FakeService(self.redis.port, name)
        self.fakes.append(f)
        return f

    def rd(self):
        r = Redis(port=self.redis.port)
        self.addCleanup(r.close)
        return r

    def wait_stream_seen(self, gw, backend="auth"):
        def seen():
            text = http("GET", "/metrics", base=gw.ops_url).body.decode()
            lines = [l for l in text.splitlines()
                     if l.startswith("adi_gateway_backend_stream_up{")
                     and f'backend="{backend}"' in l]
            return lines and all(l.endswith(" 1") for l in lines)
        wait_for(seen, "the gateway threads to see svc:{%s}:req" % backend)

    def wait_events(self, gw, at_least):
        def done():
            s = gw.metric_series("adi_gateway_auth_events_total")
            return len(s) == 2 and all(v >= at_least for v in s.values())
        wait_for(done, f"both gateway threads to apply {at_least} ev:auth events")

    def through(self, gw, svc, token, path="/api/users/", headers=None):
        """A request that passes the gateway: returns (envelope, response)."""
        h = dict(bearer(token))
        h.update(headers or {})
        call = Call(gw, "GET", path, headers=h)
        _, envelope = svc.take()
        svc.reply(envelope, 200, body={"ok": True})
        r = call.wait()
        self.assertEqual(r.status, 200, r)
        return envelope, r


class PrivatePrincipal(PrivateCase):
    def test_principal_and_client_address(self):
        gw = self.gateway()
        svc = self.fake()
        self.wait_stream_seen(gw)
        c = claims(roles=["ANALYST", "VIEWER"])
        envelope, _ = self.through(gw, svc, jwt.encode(c, KEY, algorithm="HS256"))
        self.assertEqual(envelope["op"], "auth.users_list")
        p = envelope["principal"]
        self.assertEqual(p["user_id"], c["user_id"])
        self.assertEqual(p["tenant_id"], c["tenant_id"])
        self.assertEqual(p["roles"], ["ANALYST", "VIEWER"])
        self.assertFalse(p["superuser"])
        self.assertEqual(envelope["client_ip"], "127.0.0.1")
        # Public routes carry no principal, even with a valid token.
        call = Call(gw, "POST", "/api/token/refresh/", body={"refresh": "x"},
                    headers=bearer(jwt.encode(c, KEY, algorithm="HS256")))
        _, envelope = svc.take()
        self.assertIsNone(envelope.get("principal"))
        svc.reply(envelope, 204)
        self.assertEqual(call.wait().status, 204)

    def me_user(self, tenant=None):
        """A well-formed auth.me answer."""
        return {"user": {"id": str(uuid.uuid4()), "email": "u@example.com", "first_name": "",
                         "last_name": "", "tenant": tenant, "timezone": "America/Jamaica",
                         "roles": []},
                "tenant_id": tenant}

    def me_fakes(self):
        gw = self.gateway()
        auth, ten = self.fake(), self.fake("tenant")
        self.wait_stream_seen(gw)
        self.wait_stream_seen(gw, "tenant")
        return gw, auth, ten

    def test_tenant_override_for_superusers_only(self):
        gw, auth, ten = self.me_fakes()
        other = str(uuid.uuid4())
        plain_claims = claims()
        plain = jwt.encode(plain_claims, KEY, algorithm="HS256")
        # Neither a query parameter, nor X-Tenant-Id, nor a body sets it for a plain user.
        call = Call(gw, "GET", "/api/me/?tenant_override=" + other,
                    body={"tenant_override": other}, headers={**bearer(plain), "X-Tenant-Id": other})
        _, envelope = auth.take()
        self.assertEqual(envelope["op"], "auth.me")
        self.assertNotIn("tenant_override", unpack_raw_field(envelope, "params") or {})
        self.assertEqual(unpack_raw_field(envelope, "body"), {})
        _, tenv = ten.take()
        self.assertEqual(unpack_raw_field(tenv, "params"), {"id": plain_claims["tenant_id"]})
        ten.reply(tenv, 404, error={"code": "not_found", "message": "Not found."})
        auth.reply(envelope, 200, body=self.me_user(plain_claims["tenant_id"]))
        self.assertEqual(call.wait().status, 200)
        # A superuser's X-Tenant-Id goes to auth.me, and tenant.get asks for auth's answer.
        su = jwt.encode(claims(is_superuser=True, roles=[], tenant_id=None), KEY,
                        algorithm="HS256")
        call = Call(gw, "GET", "/api/me/", headers={**bearer(su), "X-Tenant-Id": other})
        _, envelope = auth.take()
        self.assertEqual(unpack_raw_field(envelope, "params"), {"tenant_override": other})
        self.assertTrue(envelope["principal"]["superuser"])
        auth.reply(envelope, 200, body=self.me_user(other))
        _, tenv = ten.take()
        self.assertEqual(tenv["op"], "tenant.get")
        self.assertEqual(unpack_raw_field(tenv, "params"), {"id": other})
        record = {"id": other, "name": "Other", "created_at": "2024-01-01T00:00:00.000000-05:00"}
        ten.reply(tenv, 200, body=record)
        r = call.wait()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["tenant_id"], other)
        self.assertEqual(r.json()["tenant"], record)
        # Without the header a superuser of no tenant gets "tenant": null, with no tenant.get.
        call = Call(gw, "GET", "/api/me/", headers=bearer(su))
        _, envelope = auth.take()
        self.assertEqual(unpack_raw_field(envelope, "params"), {})
        auth.reply(envelope, 200, body=self.me_user())
        r = call.wait()
        self.assertEqual((r.status, r.json()["tenant"], r.json()["tenant_id"]), (200, None, None))
        # Only GET /api/me/ takes it.
        envelope, _ = self.through(gw, auth, su, path="/api/users/",
                                   headers={"X-Tenant-Id": other})
        self.assertEqual(unpack_raw_field(envelope, "params"), {})

    def test_me_aggregate(self):
        gw, auth, ten = self.me_fakes()
        c = claims()
        tok = jwt.encode(c, KEY, algorithm="HS256")
        record = {"id": c["tenant_id"], "name": "T", "created_at": "2024-01-01T00:00:00Z"}
        # Both calls are out before either is answered (parallel), answered in either order.
        for tenant_first in (True, False):
            call = Call(gw, "GET", "/api/me/", headers=bearer(tok))
            _, aenv = auth.take()
            _, tenv = ten.take()
            self.assertEqual(tenv["principal"]["tenant_id"], c["tenant_id"])
            user = self.me_user(c["tenant_id"])
            if tenant_first:
                ten.reply(tenv, 200, body=record)
                auth.reply(aenv, 200, body=user)
            else:
                auth.reply(aenv, 200, body=user)
                ten.reply(tenv, 200, body=record)
            r = call.wait()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), {**user, "tenant": record})
        # auth.me's refusal is the answer.
        call = Call(gw, "GET", "/api/me/", headers=bearer(tok))
        _, aenv = auth.take()
        _, tenv = ten.take()
        ten.reply(tenv, 200, body=record)
        auth.reply(aenv, 401, error={"code": "user_not_found", "message": "User not found"})
        r = call.wait()
        self.assertEqual((r.status, r.json()), (401, {"detail": "User not found",
                                                      "code": "user_not_found"}))
        # A failing tenant service: 503, never a half answer.
        for status in (500, 503):
            call = Call(gw, "GET", "/api/me/", headers=bearer(tok))
            _, aenv = auth.take()
            _, tenv = ten.take()
            auth.reply(aenv, 200, body=self.me_user(c["tenant_id"]))
            ten.reply(tenv, status, error={"code": "internal", "message": "boom"})
            r = call.wait()
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json()["error"]["code"], "unavailable")
        # A silent tenant service: 503 at the deadline.
        gw2 = self.gateway(REQUEST_TIMEOUT_MS=2000)
        self.wait_stream_seen(gw2)
        self.wait_stream_seen(gw2, "tenant")
        call = Call(gw2, "GET", "/api/me/", headers=bearer(tok))
        _, aenv = auth.take()
        ten.take()
        auth.reply(aenv, 200, body=self.me_user(c["tenant_id"]))
        r = call.wait()
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"]["code"], "unavailable")

    def test_superuser_passes_admin_routes(self):
        gw = self.gateway()
        svc = self.fake()
        self.wait_stream_seen(gw)
        su = jwt.encode(claims(is_superuser=True, roles=[]), KEY, algorithm="HS256")
        call = Call(gw, "DELETE", "/api/user-roles/7/", headers=bearer(su))
        _, envelope = svc.take()
        self.assertEqual(envelope["op"], "auth.roles_delete")
        self.assertEqual(unpack_raw_field(envelope, "params"), {"id": "7"})
        svc.reply(envelope, 204)
        r = call.wait()
        self.assertEqual(r.status, 204)
        self.assertEqual(r.body, b"")


    def test_idempotency_key_is_scoped_to_the_user(self):
        gw = self.gateway()
        svc = self.fake()
        self.wait_stream_seen(gw)
        tenant = str(uuid.uuid4())
        alice = jwt.encode(claims(roles=["ADMIN"], tenant_id=tenant), KEY, algorithm="HS256")
        bob = jwt.encode(claims(roles=["ADMIN"], tenant_id=tenant), KEY, algorithm="HS256")
        body = {"email": "new@example.com", "password": "long-enough"}

        def create(token, answer):
            h = dict(bearer(token), **{"Idempotency-Key": "create-1"})
            call = Call(gw, "POST", "/api/users/", body=body, headers=h)
            if answer is None:
                return call.wait()
            _, envelope = svc.take()
            svc.reply(envelope, 201, body=answer)
            return call.wait()
        first = create(alice, {"id": "a"})
        self.assertEqual((first.status, first.json()), (201, {"id": "a"}))
        # The same key and request from another user is that user's own request ...
        other = create(bob, {"id": "b"})
        self.assertEqual((other.status, other.json()), (201, {"id": "b"}))
        self.assertIsNone(other.header("idempotent-replayed"))
        # ... while the first user's retry is replayed without reaching the service.
        again = create(alice, None)
        self.assertEqual((again.status, again.json()), (201, {"id": "a"}))
        self.assertEqual(again.header("idempotent-replayed"), "true")


class PrivateRevocation(PrivateCase):
    def test_history_live_and_redis_restart(self):
        r = self.rd()
        old_user, live_user, late_user = (str(uuid.uuid4()) for _ in range(3))
        # An event older than the access token lifetime (ids are ms times), which no longer
        # matters ...
        stale_ms = int(time.time() * 1000) - 3600 * 1000
        r.command("XADD", "ev:auth", f"{stale_ms}-0", "m", auth_event(late_user, 9))
        # ... and one from before the gateway started, within the lifetime.
        r.command("XADD", "ev:auth", "*", "m", auth_event(old_user, 2, kind="deactivated"))
        # Garbage on the stream is skipped, not fatal.
        r.command("XADD", "ev:auth", "*", "m", b"\xc1not msgpack")
        r.command("XADD", "ev:auth", "*", "m", msgpack.packb({"user_id": "x", "version": 1,
                                                             "kind": "deleted"}))
        gw = self.gateway(ACCESS_TOKEN_LIFETIME_S=1800)
        svc = self.fake()
        self.wait_stream_seen(gw)
        # Ready means ev:auth history has been read: the old token is refused at once.
        for _ in range(4):
            resp = http("GET", "/api/me/", headers=bearer(
                jwt.encode(claims(user_id=old_user, ver=1), KEY, algorithm="HS256")), base=gw.url)
            self.assertEqual(resp.status, 401)
            self.assertEqual(resp.json(), invalid())
        self.through(gw, svc, jwt.encode(claims(user_id=old_user, ver=2), KEY, algorithm="HS256"))
        self.through(gw, svc, jwt.encode(claims(user_id=late_user, ver=0), KEY, algorithm="HS256"))

        # Live.
        self.wait_events(gw, 1)
        r.command("XADD", "ev:auth", "*", "m", auth_event(live_user, 1))
        self.wait_events(gw, 2)
        resp = http("GET", "/api/me/", headers=bearer(
            jwt.encode(claims(user_id=live_user), KEY, algorithm="HS256")), base=gw.url)
        self.assertEqual(resp.status, 401)
        self.assertEqual(resp.json(), invalid())

        # Redis restarts empty; the gateway reconnects and follows the new stream.
        self.redis.stop()
        self.redis.start()
        wait_for(gw.ready, "the gateway to be ready again")
        svc2 = FakeService(self.redis.port)
        self.fakes.append(svc2)
        self.wait_stream_seen(gw)
        with Redis(port=self.redis.port) as r2:
            r2.command("XADD", "ev:auth", "*", "m", auth_event(late_user, 10))
        self.wait_events(gw, 3)
        resp = http("GET", "/api/me/", headers=bearer(
            jwt.encode(claims(user_id=late_user, ver=9), KEY, algorithm="HS256")), base=gw.url)
        self.assertEqual(resp.status, 401)
        # What was learnt before the restart is kept.
        resp = http("GET", "/api/me/", headers=bearer(
            jwt.encode(claims(user_id=live_user), KEY, algorithm="HS256")), base=gw.url)
        self.assertEqual(resp.status, 401)
        self.through(gw, svc2, jwt.encode(claims(user_id=late_user, ver=10), KEY,
                                          algorithm="HS256"))


class PrivateLoginThrottle(PrivateCase):
    def login(self, gw, svc, username, status, path="/api/auth/login/", body=None):
        """One login attempt that reaches the fake auth, which answers `status`."""
        call = Call(gw, "POST", path, body=body or {"username": username, "password": "pw"})
        _, envelope = svc.take()
        self.assertIn(envelope["op"], ("auth.login", "auth.token"))
        if status == 200:
            svc.reply(envelope, 200, body={"refresh": "r", "access": "a"})
        elif status == 401:
            svc.reply(envelope, 401, error={"code": "unauthenticated", "message":
                                            "No active account found with the given credentials"})
        else:
            svc.reply(envelope, status, error={"code": "invalid", "message": "bad",
                                               "fields": [{"field": "password",
                                                           "message": "bad"}]})
        r = call.wait()
        self.assertEqual(r.status, status, r)
        return r

    def locked(self, gw, username, body=None):
        """An attempt the gateway refuses by itself; returns Retry-After."""
        r = self.rd()
        before = r.command("XLEN", "svc:{auth}:req")
        resp = http("POST", "/api/token/", body=body or {"username": username, "password": "pw"},
                    base=gw.url)
        self.assertEqual(resp.status, 429, resp)
        retry = int(resp.header("retry-after"))
        self.assertEqual(resp.json(), {"detail": "Too many failed login attempts. Try again in "
                                                 f"{retry} seconds."})
        self.assertEqual(r.command("XLEN", "svc:{auth}:req"), before)  # auth never saw it
        return retry

    def failures(self, key):
        v = self.rd().command("HGET", key, "f")
        return int(v) if v is not None else 0

    def settled(self, key, failures):
        """Waits for a settle (sent after the answer, possibly from another gateway thread)."""
        wait_for(lambda: self.failures(key) == failures,
                 f"{key} to hold {failures} failures after the settle")

    def test_account_lockout_doubling_and_reset(self):
        gw = self.gateway(LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_S=60,
                          LOGIN_ADDRESS_MAX_FAILURES=1000)
        svc = self.fake()
        self.wait_stream_seen(gw)
        user = "Alice@Example.com"
        key = account_key(user)
        # Two failures, then a success: the account starts over.
        self.login(gw, svc, user, 401)
        self.login(gw, svc, user.lower(), 401, path="/api/token/")
        self.assertEqual(self.failures(key), 2)
        self.login(gw, svc, user, 200)
        self.settled(key, 0)
        self.assertEqual(self.rd().command("EXISTS", key), 0)
        # Attempts that are not failures (400, 5xx) are taken back.
        self.login(gw, svc, user, 400)
        self.settled(key, 0)
        self.assertEqual(self.rd().command("EXISTS", key), 0)
        # Three failures lock the account for LOGIN_LOCKOUT_S.
        for _ in range(3):
            self.login(gw, svc, user, 401)
        retry = self.locked(gw, user)
        self.assertTrue(0 < retry <= 60, retry)
        self.locked(gw, user.upper())
        # Other accounts from the same address go on.
        self.login(gw, svc, "bob@example.com", 401)
        # When the lock runs out (made so here), the next failure locks for twice as long.
        self.rd().command("HSET", key, "u", "1")
        self.login(gw, svc, user, 401)
        retry = self.locked(gw, user)
        self.assertTrue(60 < retry <= 120, retry)
        self.rd().command("HSET", key, "u", "1")
        self.login(gw, svc, user, 401)
        retry = self.locked(gw, user)
        self.assertTrue(120 < retry <= 240, retry)
        # A success after the lock resets it.
        self.rd().command("HSET", key, "u", "1")
        self.login(gw, svc, user, 200)
        self.settled(key, 0)
        self.login(gw, svc, user, 401)
        self.assertEqual(self.failures(key), 1)
        self.assertGreater(self.rd().command("PTTL", key), 3000 * 1000)
        series = gw.metric_series("adi_gateway_login_attempts_total")
        self.assertTrue(any('outcome="locked"' in k for k in series), series)

    def test_address_lockout(self):
        gw = self.gateway(LOGIN_MAX_FAILURES=100, LOGIN_ADDRESS_MAX_FAILURES=2,
                          LOGIN_LOCKOUT_S=30)
        svc = self.fake()
        self.wait_stream_seen(gw)
        self.login(gw, svc, "a@example.com", 401)
        # A body without a username counts for the address only (auth answers 400 here: taken
        # back), then a second failure locks the address.
        self.login(gw, svc, None, 400, body={"password": "pw"})
        self.settled("gw:{login}:i:127.0.0.1", 1)
        self.login(gw, svc, "b@example.com", 401)
        retry = self.locked(gw, "c@example.com")
        self.assertTrue(0 < retry <= 30, retry)
        self.locked(gw, None, body={"password": "pw"})
        self.assertEqual(self.failures("gw:{login}:i:127.0.0.1"), 2)

    def test_success_does_not_reset_the_address(self):
        gw = self.gateway(LOGIN_MAX_FAILURES=100, LOGIN_ADDRESS_MAX_FAILURES=3)
        svc = self.fake()
        self.wait_stream_seen(gw)
        self.login(gw, svc, "a@example.com", 401)
        self.login(gw, svc, "a@example.com", 401)
        self.login(gw, svc, "b@example.com", 200)
        self.settled(account_key("b@example.com"), 0)
        self.settled("gw:{login}:i:127.0.0.1", 2)
        self.assertEqual(self.failures(account_key("a@example.com")), 2)

    def test_parallel_attempts_cannot_pass_the_threshold(self):
        gw = self.gateway(LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_S=60,
                          LOGIN_ADDRESS_MAX_FAILURES=1000)
        svc = self.fake()
        self.wait_stream_seen(gw)
        user = "carol@example.com"
        # Six attempts at once: each is counted before auth is asked, so only three get through
        # to auth; the others are answered 429 by the gateway at once.
        calls = [Call(gw, "POST", "/api/auth/login/", body={"username": user, "password": "p"})
                 for _ in range(6)]
        envelopes = [svc.take()[1] for _ in range(3)]
        for e in envelopes:
            svc.reply(e, 401, error={"code": "unauthenticated", "message": "no"})
        statuses = sorted(c.wait().status for c in calls)
        self.assertEqual(statuses, [401, 401, 401, 429, 429, 429])
        self.assertEqual(self.failures(account_key(user)), 3)

    def test_timeout_and_unknown_reply_are_taken_back(self):
        gw = self.gateway(LOGIN_MAX_FAILURES=3, REQUEST_TIMEOUT_MS=500,
                          LOGIN_ADDRESS_MAX_FAILURES=1000)
        svc = self.fake()
        self.wait_stream_seen(gw)
        user = "dave@example.com"
        r = http("POST", "/api/auth/login/", body={"username": user, "password": "p"},
                 base=gw.url)
        self.assertEqual(r.status, 504)
        svc.take()  # it did reach auth, which never answered
        self.settled(account_key(user), 0)
        self.login(gw, svc, user, 503)
        self.settled(account_key(user), 0)
        self.settled("gw:{login}:i:127.0.0.1", 0)


if __name__ == "__main__":
    unittest.main()
