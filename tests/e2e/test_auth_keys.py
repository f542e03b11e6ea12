# SPDX-License-Identifier: MIT
"""RS256 and ES256 end to end: only adi-auth holds the private key, the gateway the public one.

For each algorithm the test makes its own key pairs with the openssl CLI (`openssl genpkey`, RSA
2048 or EC P-256, then `openssl pkey -pubout`) and a private stack: a redis-server, a database of
its own migrated with adi-admin, a real adi-auth (JWT_ALGORITHM, JWT_PRIVATE_KEY_FILE, no
JWT_SIGNING_KEY) and an adi-gateway given only JWT_ALGORITHM and JWT_PUBLIC_KEY_FILE (neither a
private key nor an HS256 secret in its environment). A tenant ADMIN made with `adi-admin
create-user` logs in through the gateway; the tokens carry the algorithm in their header and
PyJWT (Debian python3-jwt with python3-cryptography) verifies them with the public key; the access
token lists the tenant's users, the refresh token rotates and its new access token works.

Refused with API.md's 401 token_not_valid body, on a route that needs a token: an HS256 token
whose HMAC secret is the public key PEM (algorithm confusion), tokens of the configured algorithm
signed by another key pair, and "alg": "none" tokens, all carrying the real user's claims. Both
processes exit 0 on SIGTERM with no sanitizer report, and neither log holds the private key or
the password.

Skipped (unittest skip) when the openssl CLI or the cryptography module is missing.
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import uuid

import jwt  # Debian python3-jwt

from gw_e2e import (PrivateDatabase, PrivateGateway, PrivateRedis, PrivateService, env, http,
                    wait_for)

try:
    import cryptography  # noqa: F401  Debian python3-cryptography: PyJWT's RS256/ES256
    HAVE_CRYPTO = jwt.algorithms.has_crypto
except ImportError:
    HAVE_CRYPTO = False

OPENSSL = shutil.which("openssl")
PASSWORD = "e2e-keys-password-1"
USER_KEYS = {"id", "email", "first_name", "last_name", "tenant", "timezone", "roles"}
WWW = 'Bearer realm="api"'
INVALID = {"detail": "Given token not valid for any token type", "code": "token_not_valid",
           "messages": [{"token_class": "AccessToken", "token_type": "access",
                         "message": "Token is invalid or expired"}]}
KEYGEN = {"ES256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
          "RS256": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unverified_claims(token):
    return jwt.decode(token, options={"verify_signature": False})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def key_pair(workdir, alg, tag):
    """A new key pair of `alg` made with the openssl CLI: (private PEM path, public PEM path)."""
    priv = os.path.join(workdir, f"{tag}.pem")
    pub = os.path.join(workdir, f"{tag}.pub.pem")
    for args in (["genpkey", *KEYGEN[alg], "-out", priv], ["pkey", "-in", priv, "-pubout",
                                                          "-out", pub]):
        p = subprocess.run([OPENSSL, *args], stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError(f"openssl {args[0]}: {p.returncode} {p.stderr}")
    os.chmod(priv, 0o600)
    return priv, pub


def read(path):
    with open(path, "rb") as f:
        return f.read()


class _Recorded:
    """Puts each process in `_Recorded.sink` as soon as it is spawned, so that one whose start-up
    times out (its constructor raising) is still stopped by the class cleanup."""

    sink = None

    def _spawn(self, binary, environ):
        super()._spawn(binary, environ)
        _Recorded.sink.append(self)


class _Service(_Recorded, PrivateService):
    pass


class _Gateway(_Recorded, PrivateGateway):
    pass


@unittest.skipUnless(OPENSSL, "the openssl CLI is not installed")
@unittest.skipUnless(HAVE_CRYPTO, "python3-cryptography is not installed")
class _KeyPairStack:
    """The private stack for ALG, made once per class (setUpClass), torn down by class cleanups
    even when the set-up fails half-way."""

    ALG = None

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="keys-e2e-", dir=env("ADI_TEST_DIR"))
        cls.addClassCleanup(cls._remove_dir)
        cls.priv_path, cls.pub_path = key_pair(cls.dir, cls.ALG, "auth")
        cls.other_priv_path, _ = key_pair(cls.dir, cls.ALG, "other")
        cls.pub_pem = read(cls.pub_path)

        cls.redis = PrivateRedis(cls.dir)
        cls.addClassCleanup(cls.redis.stop)
        cls.redis.start()
        cls.db = PrivateDatabase(prefix="e2e_keys")
        cls.addClassCleanup(cls.db.drop)

        cls.tenant = str(uuid.uuid4())
        cls.email = f"keys-{cls.ALG.lower()}-{uuid.uuid4().hex[:10]}@e2e.example"
        p = subprocess.run(
            [os.path.join(env("ADI_BIN_DIR"), "adi-admin"), "create-user", "--tenant", cls.tenant,
             "--email", cls.email, "--password-env", "ADI_E2E_KEYS_PASSWORD", "--role", "ADMIN"],
            env=dict(os.environ, DATABASE_URL=cls.db.url(), REDIS_URL=cls.redis.url,
                     PASSWORD_ITERATIONS="1000", ADI_E2E_KEYS_PASSWORD=PASSWORD),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError(f"adi-admin create-user: {p.returncode} {p.stderr}")
        cls.user_id = p.stdout.strip()

        cls.procs = _Recorded.sink = []
        cls.addClassCleanup(cls._stop_all)
        cls.auth = _Service(cls.dir, "auth", cls.redis.url, cls.db.url("adi_auth"),
                            JWT_ALGORITHM=cls.ALG, JWT_PRIVATE_KEY_FILE=cls.priv_path,
                            JWT_PUBLIC_KEY_FILE="", JWT_SIGNING_KEY="",
                            PASSWORD_ITERATIONS="1000")
        cls.gw = _Gateway(cls.dir, cls.redis.url, JWT_ALGORITHM=cls.ALG,
                          JWT_PUBLIC_KEY_FILE=cls.pub_path, JWT_SIGNING_KEY=None,
                          JWT_PRIVATE_KEY_FILE=None, REQUEST_TIMEOUT_MS=10000)
        wait_for(cls.gw.ready, "the private gateway to be ready")

        def auth_stream_seen():
            text = http("GET", "/metrics", base=cls.gw.ops_url).body.decode()
            lines = [line for line in text.splitlines()
                     if line.startswith("adi_gateway_backend_stream_up{")
                     and 'backend="auth"' in line]
            return lines and all(line.endswith(" 1") for line in lines)
        wait_for(auth_stream_seen, "every gateway thread to see svc:{auth}:req")

    @classmethod
    def tearDownClass(cls):
        # SIGTERM both (a clean exit, and LeakSanitizer reports at exit), then the logs: no
        # sanitizer report, no line of the private key, not the user's password.
        codes = {os.path.basename(p.log_path): p.stop() for p in reversed(cls.procs)}
        pem_lines = read(cls.priv_path).decode().splitlines()[1:-1]
        problems = []
        for p in cls.procs:
            name = os.path.basename(p.log_path)
            text = p.read_log()
            if codes[name] != 0:
                problems.append(f"{name}: exit code {codes[name]}")
            problems += [f"{name}: {m}" for m in p.sanitizer_report()]
            if any(line in text for line in pem_lines):
                problems.append(f"{name}: the private key in the log")
            if PASSWORD in text:
                problems.append(f"{name}: the password in the log")
        if problems:
            cls.keep_dir = True
            raise AssertionError("; ".join(problems) + f" (logs kept in {cls.dir})")

    @classmethod
    def _remove_dir(cls):
        if not getattr(cls, "keep_dir", False):
            shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def _stop_all(cls):
        for p in reversed(cls.procs):
            p.stop()

    # ---- helpers ---------------------------------------------------------------------------

    def call(self, method, path, body=None, token=None):
        return http(method, path, body=body, headers=bearer(token) if token else None,
                    base=self.gw.url)

    def login(self):
        r = self.call("POST", "/api/auth/login/", {"username": self.email, "password": PASSWORD})
        self.assertEqual(r.status, 200, r)
        return r.json()

    def verified(self, token, token_type):
        """The token's claims, checked by PyJWT with the public key and the header's alg."""
        self.assertEqual(jwt.get_unverified_header(token)["alg"], self.ALG)
        c = jwt.decode(token, self.pub_pem, algorithms=[self.ALG])
        self.assertEqual(c["token_type"], token_type)
        self.assertEqual((c["user_id"], c["tenant_id"]), (self.user_id, self.tenant))
        return c

    def assert_lists_user(self, access):
        r = self.call("GET", "/api/users/", token=access)
        self.assertEqual(r.status, 200, r)
        users = r.json()
        self.assertEqual([u["email"] for u in users], [self.email])
        self.assertEqual(set(users[0]), USER_KEYS)
        self.assertEqual((users[0]["id"], users[0]["tenant"], users[0]["roles"]),
                         (self.user_id, self.tenant, ["ADMIN"]))

    def assert_refused(self, token):
        r = self.call("GET", "/api/users/", token=token)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json(), INVALID)
        self.assertEqual(r.header("www-authenticate"), WWW)

    # ---- tests -----------------------------------------------------------------------------

    def test_gateway_holds_only_the_public_key(self):
        with open(f"/proc/{self.gw.proc.pid}/environ", "rb") as f:
            names = {kv.split(b"=", 1)[0].decode() for kv in f.read().split(b"\0") if kv}
        self.assertNotIn("JWT_SIGNING_KEY", names)
        self.assertNotIn("JWT_PRIVATE_KEY_FILE", names)
        self.assertIn("JWT_PUBLIC_KEY_FILE", names)

    def test_login_users_and_refresh(self):
        body = self.login()
        self.assertEqual(body["tenant_id"], self.tenant)
        self.assertEqual(body["user"]["id"], self.user_id)
        access = self.verified(body["access"], "access")
        self.assertEqual(access["roles"], ["ADMIN"])
        self.verified(body["refresh"], "refresh")
        # PyJWT really checks: the other key pair's public key does not verify the token.
        other_pub = subprocess.run([OPENSSL, "pkey", "-in", self.other_priv_path, "-pubout"],
                                   capture_output=True, timeout=60, check=True).stdout
        with self.assertRaises(jwt.InvalidSignatureError):
            jwt.decode(body["access"], other_pub, algorithms=[self.ALG])
        self.assert_lists_user(body["access"])

        r = self.call("POST", "/api/token/refresh/", {"refresh": body["refresh"]})
        self.assertEqual(r.status, 200, r)
        rotated = r.json()
        self.assertEqual(set(rotated), {"access", "refresh"})
        self.assertNotEqual(rotated["access"], body["access"])
        self.assertNotEqual(rotated["refresh"], body["refresh"])
        self.verified(rotated["access"], "access")
        self.verified(rotated["refresh"], "refresh")
        self.assert_lists_user(rotated["access"])

    def test_forged_tokens_refused(self):
        real = self.login()["access"]
        claims = unverified_claims(real)
        payload = b64url(json.dumps(claims).encode())
        head, _, sig = real.split(".")

        # Algorithm confusion: HS256 with the public key PEM (as the gateway holds it) as secret.
        hs_input = f"{b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{payload}"
        confusion = {}
        for name, secret in (("pem file", self.pub_pem), ("pem stripped", self.pub_pem.strip())):
            mac = hmac.new(secret, hs_input.encode(), hashlib.sha256).digest()
            confusion[f"HS256, {name} as secret"] = f"{hs_input}.{b64url(mac)}"
        # The same HMAC under the configured algorithm's name.
        alg_input = f"{head}.{payload}"
        mac = hmac.new(self.pub_pem, alg_input.encode(), hashlib.sha256).digest()
        confusion[f"{self.ALG} header, HMAC signature"] = f"{alg_input}.{b64url(mac)}"

        other_priv = read(self.other_priv_path)
        none_head = b64url(b'{"alg":"none","typ":"JWT"}')
        cases = dict(confusion)
        cases.update({
            "another key pair": jwt.encode(claims, other_priv, algorithm=self.ALG),
            "another key pair, the real header": "%s.%s" % (
                alg_input, jwt.encode(claims, other_priv, algorithm=self.ALG).split(".")[2]),
            "alg none": f"{none_head}.{payload}.",
            "alg none, the real signature": f"{none_head}.{payload}.{sig}",
            "alg none, PyJWT": jwt.encode(claims, None, algorithm="none"),
        })
        for name, token in cases.items():
            with self.subTest(name):
                self.assert_refused(token)
        # The real token still works afterwards.
        self.assert_lists_user(real)

class ES256(_KeyPairStack, unittest.TestCase):
    ALG = "ES256"


class RS256(_KeyPairStack, unittest.TestCase):
    ALG = "RS256"


if __name__ == "__main__":
    unittest.main()
