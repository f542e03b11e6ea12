# SPDX-License-Identifier: MIT
"""Interoperability of libs/jwt with PyJWT (Debian's python3-jwt), both directions, for real.

PyJWT is what djangorestframework-simplejwt signs and verifies with, so tokens shaped like
simplejwt's (token_type, exp, iat, jti = uuid4().hex, user_id, plus tenant_id and roles) made by
PyJWT must verify in C, and tokens made in C must verify in PyJWT, for HS256, RS256 and ES256.
Refusals are checked with PyJWT-made tokens too: alg none, algorithm confusion, wrong key,
expiry (and leeway), wrong token type.

Run by ctest as: python3 pyjwt_interop.py <path to jwt_cli>
"""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

try:
    import jwt  # Debian: python3-jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
except ImportError as exc:  # pragma: no cover - reported as a failure, never skipped
    sys.stderr.write("pyjwt_interop: needs python3-jwt and python3-cryptography: %s\n" % exc)
    sys.exit(1)

CLI = None
SECRET = b"django-insecure-interop-secret-0123456789abcdef"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class Interop(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="adi-jwt-interop-")
        d = cls.tmp.name
        cls.files = {}

        def write(name, data):
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(data)
            cls.files[name] = path
            return path

        write("hs.secret", SECRET)
        write("hs.other", SECRET + b"-other")
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ec_key = ec.generate_private_key(ec.SECP256R1())
        cls.priv = {"RS256": rsa_key, "ES256": ec_key}
        for alg, key in cls.priv.items():
            write(alg + ".priv", key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            write(alg + ".pub", key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write("RS256.other.pub", other.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    # -- helpers ---------------------------------------------------------------------------

    def sign_key(self, alg):
        return SECRET if alg == "HS256" else self.files[alg + ".priv"]

    def verify_keyfile(self, alg):
        return self.files["hs.secret"] if alg == "HS256" else self.files[alg + ".pub"]

    def pyjwt_key(self, alg, private):
        if alg == "HS256":
            return SECRET
        with open(self.files[alg + (".priv" if private else ".pub")], "rb") as f:
            return f.read()

    def c_verify(self, token, alg, keyfile=None, ttype="access", now=None, leeway=0):
        now = int(time.time()) if now is None else now
        p = subprocess.run(
            [CLI, "verify", alg, keyfile or self.verify_keyfile(alg), ttype, str(now),
             str(leeway)],
            input=token.encode("ascii") if isinstance(token, str) else token,
            capture_output=True, timeout=30)
        self.assertIn(p.returncode, (0, 1), p.stderr.decode())
        return p.returncode, p.stdout.decode().strip()

    def c_sign(self, alg, ttype, user, tenant, roles, iat, lifetime):
        keyfile = self.files["hs.secret"] if alg == "HS256" else self.files[alg + ".priv"]
        p = subprocess.run(
            [CLI, "sign", alg, keyfile, ttype, user, tenant or "-",
             ",".join(roles) if roles else "-", str(iat), str(lifetime)],
            capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout.decode().strip()

    @staticmethod
    def simplejwt_payload(ttype="access", lifetime=1800, now=None, **extra):
        now = int(time.time()) if now is None else now
        payload = {
            "token_type": ttype,
            "exp": now + lifetime,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "user_id": str(uuid.uuid4()),
            "tenant_id": str(uuid.uuid4()),
            "roles": ["ADMIN", "ANALYST"],
        }
        payload.update(extra)
        return payload

    # -- PyJWT -> C ------------------------------------------------------------------------

    def test_pyjwt_tokens_verify_in_c(self):
        for alg in ("HS256", "RS256", "ES256"):
            for ttype in ("access", "refresh"):
                with self.subTest(alg=alg, ttype=ttype):
                    payload = self.simplejwt_payload(ttype)
                    token = jwt.encode(payload, self.pyjwt_key(alg, True), algorithm=alg)
                    rc, out = self.c_verify(token, alg, ttype=ttype)
                    self.assertEqual(rc, 0, out)
                    got = json.loads(out)
                    for k in ("token_type", "exp", "iat", "jti", "user_id", "tenant_id", "roles"):
                        self.assertEqual(got[k], payload[k], k)

    def test_pyjwt_refusals_in_c(self):
        now = int(time.time())
        payload = self.simplejwt_payload(now=now)
        cases = []
        # alg none, as PyJWT makes it.
        cases.append(("alg_none", "HS256", None,
                      jwt.encode(payload, None, algorithm="none"), "access", 0))
        # Algorithm confusion: HS256 "signed" with the RSA public key PEM, where RS256 is pinned.
        # (PyJWT refuses to make it, so it is built by hand exactly as an attacker would.)
        pub = self.pyjwt_key("RS256", False)
        signing_input = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + \
            b64u(json.dumps(payload).encode())
        sig = hmac.new(pub, signing_input.encode(), hashlib.sha256).digest()
        cases.append(("alg_mismatch", "RS256", None, signing_input + "." + b64u(sig),
                      "access", 0))
        # An honest HS512 token, and an RS256 token presented to an HS256 verifier.
        cases.append(("alg_mismatch", "HS256", None,
                      jwt.encode(payload, SECRET, algorithm="HS512"), "access", 0))
        cases.append(("alg_mismatch", "HS256", None,
                      jwt.encode(payload, self.pyjwt_key("RS256", True), algorithm="RS256"),
                      "access", 0))
        # Wrong keys.
        cases.append(("bad_signature", "HS256", self.files["hs.other"],
                      jwt.encode(payload, SECRET, algorithm="HS256"), "access", 0))
        cases.append(("bad_signature", "RS256", self.files["RS256.other.pub"],
                      jwt.encode(payload, self.pyjwt_key("RS256", True), algorithm="RS256"),
                      "access", 0))
        # Expired 10 s ago: refused without leeway, accepted with 30 s (as PyJWT's leeway).
        expired = self.simplejwt_payload(now=now - 1810)
        tok = jwt.encode(expired, SECRET, algorithm="HS256")
        cases.append(("expired", "HS256", None, tok, "access", 0))
        cases.append(("ok", "HS256", None, tok, "access", 30))
        # A refresh token presented as an access token.
        cases.append(("wrong_type", "HS256", None,
                      jwt.encode(self.simplejwt_payload("refresh", now=now), SECRET,
                                 algorithm="HS256"), "access", 0))
        # A token without jti (simplejwt refuses it too).
        nojti = dict(payload)
        del nojti["jti"]
        cases.append(("missing_claim", "HS256", None,
                      jwt.encode(nojti, SECRET, algorithm="HS256"), "access", 0))
        for want, alg, keyfile, token, ttype, leeway in cases:
            with self.subTest(want=want, alg=alg):
                rc, out = self.c_verify(token, alg, keyfile=keyfile, ttype=ttype, now=now,
                                        leeway=leeway)
                if want == "ok":
                    self.assertEqual(rc, 0, out)
                else:
                    self.assertEqual(rc, 1, out)
                    self.assertEqual(out.split()[1], want, out)

    # -- C -> PyJWT ------------------------------------------------------------------------

    def test_c_tokens_verify_in_pyjwt(self):
        for alg in ("HS256", "RS256", "ES256"):
            for ttype in ("access", "refresh"):
                with self.subTest(alg=alg, ttype=ttype):
                    user, tenant = str(uuid.uuid4()), str(uuid.uuid4())
                    now = int(time.time())
                    token = self.c_sign(alg, ttype, user, tenant, ["ADMIN", "VIEWER"], now, 300)
                    self.assertEqual(jwt.get_unverified_header(token),
                                     {"alg": alg, "typ": "JWT"})
                    claims = jwt.decode(
                        token, self.pyjwt_key(alg, False), algorithms=[alg],
                        options={"require": ["exp", "iat", "jti", "token_type", "user_id"]})
                    self.assertEqual(claims["token_type"], ttype)
                    self.assertEqual(claims["user_id"], user)
                    self.assertEqual(claims["tenant_id"], tenant)
                    self.assertEqual(claims["roles"], ["ADMIN", "VIEWER"])
                    self.assertEqual(claims["iat"], now)
                    self.assertEqual(claims["exp"], now + 300)
                    self.assertRegex(claims["jti"], r"^[0-9a-f]{32}$")
                    self.assertEqual(uuid.UUID(hex=claims["jti"]).version, 4)
                    # And PyJWT refuses it under another key, as it must.
                    if alg == "HS256":
                        with self.assertRaises(jwt.InvalidSignatureError):
                            jwt.decode(token, SECRET + b"x", algorithms=[alg])

    def test_c_tokens_without_tenant_and_expired_in_pyjwt(self):
        user = str(uuid.uuid4())
        token = self.c_sign("HS256", "access", user, None, [], int(time.time()), 60)
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
        self.assertIsNone(claims["tenant_id"])
        self.assertEqual(claims["roles"], [])
        old = self.c_sign("HS256", "access", user, None, [], int(time.time()) - 3600, 60)
        with self.assertRaises(jwt.ExpiredSignatureError):
            jwt.decode(old, SECRET, algorithms=["HS256"])

    def test_round_trip_c_pyjwt_c(self):
        # C signs, PyJWT re-signs the decoded claims, C verifies PyJWT's token.
        token = self.c_sign("RS256", "access", str(uuid.uuid4()), str(uuid.uuid4()),
                            ["ADMIN"], int(time.time()), 120)
        claims = jwt.decode(token, self.pyjwt_key("RS256", False), algorithms=["RS256"])
        again = jwt.encode(claims, self.pyjwt_key("ES256", True), algorithm="ES256")
        rc, out = self.c_verify(again, "ES256")
        self.assertEqual(rc, 0, out)
        self.assertEqual(json.loads(out)["jti"], claims["jti"])


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        sys.stderr.write("usage: pyjwt_interop.py <jwt_cli>\n")
        sys.exit(2)
    CLI = sys.argv.pop(1)
    unittest.main(verbosity=2)
