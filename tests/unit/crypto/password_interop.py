# SPDX-License-Identifier: MIT
"""Password hashes of libs/crypto against Python's hashlib, both directions.

Django's PBKDF2PasswordHasher is hashlib.pbkdf2_hmac('sha256', ...) with the salt as given and the
key in standard base64, formatted pbkdf2_sha256$<iterations>$<salt>$<hash>. Hashes made in C must
verify with that derivation (so the Django project accepts them), and fresh hashes made with it
must verify in C, including non-ASCII passwords and old 12-character salts.

Run by ctest as: python3 password_interop.py <path to crypto_cli>
"""
import base64
import hashlib
import hmac
import secrets
import string
import subprocess
import sys
import unittest

CLI = None


def django_encode(password, salt, iterations):
    dk = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"), iterations)
    return "pbkdf2_sha256$%d$%s$%s" % (iterations, salt, base64.b64encode(dk).decode("ascii"))


def django_verify(password, encoded):
    algorithm, iterations, salt, _ = encoded.split("$", 3)
    assert algorithm == "pbkdf2_sha256"
    return hmac.compare_digest(encoded.encode(), django_encode(password, salt, int(iterations)).encode())


def run(*args, password):
    p = subprocess.run([CLI, *args], input=password.encode("utf-8"), capture_output=True,
                       timeout=60)
    return p.returncode, p.stdout.decode().strip()


class PasswordInterop(unittest.TestCase):
    PASSWORDS = ["correct horse battery staple", "p\u00e4ssw\u00f6rd \u2713", "x", "a$b$c"]

    def test_c_hashes_verify_in_python(self):
        for pw in self.PASSWORDS:
            with self.subTest(pw=pw):
                rc, enc = run("hash", "1000", password=pw)
                self.assertEqual(rc, 0)
                alg, it, salt, b64 = enc.split("$")
                self.assertEqual((alg, it), ("pbkdf2_sha256", "1000"))
                self.assertEqual(len(salt), 22)
                self.assertTrue(all(c in string.ascii_letters + string.digits for c in salt))
                self.assertEqual(len(base64.b64decode(b64, validate=True)), 32)
                self.assertTrue(django_verify(pw, enc))
                self.assertFalse(django_verify(pw + "!", enc))

    def test_python_hashes_verify_in_c(self):
        alphabet = string.ascii_letters + string.digits
        for pw in self.PASSWORDS:
            for salt_len, iterations in ((22, 1000), (12, 1500), (22, 1)):
                salt = "".join(secrets.choice(alphabet) for _ in range(salt_len))
                enc = django_encode(pw, salt, iterations)
                with self.subTest(pw=pw, enc=enc):
                    self.assertEqual(run("verify", enc, "1000", password=pw),
                                     (0, "match upgrade=%d" % (salt_len < 22 or iterations < 1000)))
                    self.assertEqual(run("verify", enc, "1000", password=pw + " "), (1, "nomatch"))

    def test_default_cost_matches_django_5(self):
        rc, enc = run("hash", "0", password="hunter2!")
        self.assertEqual(rc, 0)
        self.assertTrue(enc.startswith("pbkdf2_sha256$720000$"))
        self.assertTrue(django_verify("hunter2!", enc))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.stderr.write("usage: password_interop.py <crypto_cli>\n")
        sys.exit(2)
    CLI = sys.argv.pop(1)
    unittest.main(verbosity=2)
