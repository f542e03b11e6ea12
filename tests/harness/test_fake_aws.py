# SPDX-License-Identifier: MIT
"""tests/harness/fake_aws.py against AWS's own SDK: botocore's real KMS and STS clients (Debian's
python3-botocore) talk to a private instance of the server, so the fake is shown to accept what AWS
accepts and to reject, with AWS's error types, what AWS rejects:

- KMS GenerateDataKey, Decrypt, Encrypt, ReEncrypt round trips, keys named by alias, ARN or uuid;
- a wrong encryption context or another key (InvalidCiphertextException, IncorrectKeyException),
  an unknown key (NotFoundException);
- signatures: a wrong secret key, another region, an unknown access key, a tampered body, a stale
  X-Amz-Date, no Authorization at all, a malformed or oversized body;
- throttling and failure injection seen by botocore as ThrottlingException / KMSInternalException
  (and retried away by botocore's standard retry mode);
- STS AssumeRoleWithWebIdentity through botocore's sts client, KMS with those temporary
  credentials with and without the session token, expire_sessions -> ExpiredTokenException;
- IMDSv2 with urllib, and through botocore's own InstanceMetadataFetcher;
- the log holds no secret, and SIGTERM ends the server cleanly.
When the ctest fixture `fakeaws` is up (ADI_FAKE_AWS_URL in the environment), its server is checked
with the credentials and token file it published.
Run: /usr/bin/python3 -m unittest -v test_fake_aws.py (from tests/harness).
"""
import base64
import datetime
import http.client
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import uuid
from unittest import mock

import botocore.auth
import botocore.session
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.utils import InstanceMetadataFetcher

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_aws.py")
WAIT = 30.0
REGION = "us-east-1"
ACCESS = "AKIDFAKEEXAMPLE"
ROLE_ARN = "arn:aws:iam::123456789012:role/adi-vault"
IMDS_ROLE = "adi-vault-role"
KEYS = ("alias/adi-a", "alias/adi-b")
NO_RETRY = Config(retries={"total_max_attempts": 1})


def wait_for(cond, what, timeout=WAIT, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def http_json(base, method, path, body=None, headers=None):
    u = urllib.request.Request(base + path, method=method, headers=headers or {},
                               data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(u, timeout=WAIT) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        data = e.read()
        e.close()
        return e.code, json.loads(data or b"null")


class FakeAws:
    """A private fake_aws.py process with a random secret key and web identity token."""

    def __init__(self, workdir):
        self.secret = base64.b64encode(secrets.token_bytes(30)).decode()
        self.web_token = "eyJ" + secrets.token_urlsafe(60)
        self.port_file = os.path.join(workdir, "port")
        self.log_path = os.path.join(workdir, "fake-aws.log")
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, "--port-file", self.port_file, "--region", REGION,
             "--access-key", ACCESS, "--secret-key", self.secret, "--keys", ",".join(KEYS),
             "--role-arn", ROLE_ARN, "--web-identity-token", self.web_token,
             "--imds-role", IMDS_ROLE, "--log", self.log_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def port():
            if self.proc.poll() is not None:
                raise AssertionError("fake_aws.py exited: " + self.proc.stderr.read().decode())
            try:
                with open(self.port_file) as f:
                    return int(f.read())
            except (FileNotFoundError, ValueError):
                return None
        self.url = f"http://127.0.0.1:{wait_for(port, 'the port file')}"

    def stop(self):
        """SIGTERM; the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.proc.stderr.close()
                return None
        self.proc.stderr.close()
        return self.proc.returncode

    def control(self, **kw):
        status, body = http_json(self.url, "POST", "/_control", kw)
        assert status == 200, (status, body)
        return body

    def stats(self):
        status, body = http_json(self.url, "GET", "/_stats")
        assert status == 200, (status, body)
        return body

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read()


class ClosingClient:
    """A mixin giving botocore 1.29's clients `with` (closing their connection pool on exit)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _add_closing(class_attributes, base_classes, **_):
    base_classes.insert(0, ClosingClient)


SESSION = botocore.session.get_session()
SESSION.register("creating-client-class", _add_closing)


def kms_client(url, access=ACCESS, secret=None, token=None, region=REGION, config=NO_RETRY):
    return SESSION.create_client("kms", endpoint_url=url, region_name=region,
                                 aws_access_key_id=access, aws_secret_access_key=secret,
                                 aws_session_token=token, config=config)


def sts_client(url):
    # AssumeRoleWithWebIdentity is unsigned: botocore sends no credentials.
    return SESSION.create_client("sts", endpoint_url=url, region_name=REGION,
                                 config=Config(signature_version=UNSIGNED,
                                               retries={"total_max_attempts": 1}))


def error_code(ctx):
    return ctx.exception.response["Error"]["Code"]


def signed_raw(url, body, secret, target="TrentService.Encrypt", access=ACCESS):
    """A KMS request signed by botocore's SigV4Auth over an arbitrary body, sent with http.client:
    the (status, JSON) answered."""
    req = AWSRequest(method="POST", url=url + "/", data=body,
                     headers={"Content-Type": "application/x-amz-json-1.1",
                              "X-Amz-Target": target})
    SigV4Auth(Credentials(access, secret), "kms", REGION).add_auth(req)
    p = req.prepare()
    host, port = url.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    try:
        conn.request("POST", "/", body=p.body, headers=dict(p.headers))
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


class KmsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="fake-aws-test-")
        cls.fake = FakeAws(cls.tmp.name)
        cls.url = cls.fake.url
        cls.kms = kms_client(cls.url, secret=cls.fake.secret)
        cls.plaintexts = []  # every plaintext seen: none may reach the log

    @classmethod
    def tearDownClass(cls):
        cls.kms.close()
        code = cls.fake.stop()
        cls.tmp.cleanup()
        if code != 0:
            raise AssertionError(f"fake_aws.py exited with {code} on SIGTERM")

    def setUp(self):
        self.fake.control(reset=True)

    def gdk(self, ctx="tenant-1", key="alias/adi-a", client=None):
        r = (client or self.kms).generate_data_key(KeyId=key, KeySpec="AES_256",
                                                   EncryptionContext={"tenant_id": ctx})
        self.plaintexts.append(r["Plaintext"])
        return r

    # ---- the four operations

    def test_round_trips(self):
        r = self.gdk()
        self.assertEqual(len(r["Plaintext"]), 32)
        arn = r["KeyId"]
        self.assertRegex(arn, r"^arn:aws:kms:us-east-1:123456789012:key/[0-9a-f-]{36}$")
        d = self.kms.decrypt(CiphertextBlob=r["CiphertextBlob"],
                             EncryptionContext={"tenant_id": "tenant-1"})
        self.assertEqual((d["Plaintext"], d["KeyId"]), (r["Plaintext"], arn))
        # NumberOfBytes instead of KeySpec; the key by ARN and by uuid.
        key_uuid = arn.rsplit("/", 1)[1]
        for key in (arn, key_uuid, "arn:aws:kms:us-east-1:123456789012:alias/adi-a"):
            g = self.kms.generate_data_key(KeyId=key, NumberOfBytes=32,
                                           EncryptionContext={"tenant_id": "t"})
            self.assertEqual((g["KeyId"], len(g["Plaintext"])), (arn, 32))
        # Decrypt naming the key that made the blob.
        d = self.kms.decrypt(CiphertextBlob=r["CiphertextBlob"], KeyId="alias/adi-a",
                             EncryptionContext={"tenant_id": "tenant-1"})
        self.assertEqual(d["Plaintext"], r["Plaintext"])

        plain = secrets.token_bytes(32)
        self.plaintexts.append(plain)
        e = self.kms.encrypt(KeyId="alias/adi-b", Plaintext=plain,
                             EncryptionContext={"tenant_id": "tenant-2"})
        self.assertNotIn(plain, e["CiphertextBlob"])
        b_arn = e["KeyId"]
        self.assertNotEqual(b_arn, arn)
        # Two encryptions of one plaintext differ (fresh nonce).
        e2 = self.kms.encrypt(KeyId="alias/adi-b", Plaintext=plain,
                              EncryptionContext={"tenant_id": "tenant-2"})
        self.assertNotEqual(e["CiphertextBlob"], e2["CiphertextBlob"])

        rr = self.kms.re_encrypt(CiphertextBlob=e["CiphertextBlob"],
                                 SourceEncryptionContext={"tenant_id": "tenant-2"},
                                 DestinationKeyId="alias/adi-a",
                                 DestinationEncryptionContext={"tenant_id": "tenant-2"})
        self.assertEqual((rr["SourceKeyId"], rr["KeyId"]), (b_arn, arn))
        d = self.kms.decrypt(CiphertextBlob=rr["CiphertextBlob"],
                             EncryptionContext={"tenant_id": "tenant-2"})
        self.assertEqual((d["Plaintext"], d["KeyId"]), (plain, arn))

        s = self.fake.stats()
        self.assertEqual(s["kms"], {"GenerateDataKey": 4, "Decrypt": 3, "Encrypt": 2,
                                    "ReEncrypt": 1})
        self.assertEqual(s["rejected"], {})

    def test_context_and_key_errors(self):
        r = self.gdk(ctx="tenant-1")
        for ctx in ({"tenant_id": "tenant-2"}, {}, {"tenant_id": "tenant-1", "x": "y"}):
            with self.assertRaises(ClientError) as c:
                self.kms.decrypt(CiphertextBlob=r["CiphertextBlob"], EncryptionContext=ctx)
            self.assertEqual(error_code(c), "InvalidCiphertextException")
        with self.assertRaises(ClientError) as c:
            self.kms.re_encrypt(CiphertextBlob=r["CiphertextBlob"],
                                SourceEncryptionContext={"tenant_id": "tenant-9"},
                                DestinationKeyId="alias/adi-b",
                                DestinationEncryptionContext={"tenant_id": "tenant-1"})
        self.assertEqual(error_code(c), "InvalidCiphertextException")
        # A damaged blob, and one from another server (another key material).
        bad = bytearray(r["CiphertextBlob"])
        bad[-1] ^= 1
        with self.assertRaises(ClientError) as c:
            self.kms.decrypt(CiphertextBlob=bytes(bad), EncryptionContext={"tenant_id": "tenant-1"})
        self.assertEqual(error_code(c), "InvalidCiphertextException")
        # Another key named than the one that made the blob.
        with self.assertRaises(ClientError) as c:
            self.kms.decrypt(CiphertextBlob=r["CiphertextBlob"], KeyId="alias/adi-b",
                             EncryptionContext={"tenant_id": "tenant-1"})
        self.assertEqual(error_code(c), "IncorrectKeyException")
        for call in (lambda: self.gdk(key="alias/nope"),
                     lambda: self.kms.encrypt(KeyId=str(uuid.uuid4()), Plaintext=b"x"),
                     lambda: self.kms.re_encrypt(CiphertextBlob=r["CiphertextBlob"],
                                                 DestinationKeyId="alias/nope")):
            with self.assertRaises(ClientError) as c:
                call()
            self.assertEqual(error_code(c), "NotFoundException")
            self.assertEqual(c.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        s = self.fake.stats()
        self.assertEqual(s["rejected"], {"InvalidCiphertextException": 5,
                                         "IncorrectKeyException": 1, "NotFoundException": 3})

    # ---- signatures

    def test_wrong_secret_region_and_access_key(self):
        cases = (
            (kms_client(self.url, secret=self.fake.secret + "x"), "InvalidSignatureException"),
            (kms_client(self.url, secret=self.fake.secret, region="eu-west-1"),
             "InvalidSignatureException"),
            (kms_client(self.url, access="AKIDUNKNOWN0000", secret=self.fake.secret),
             "UnrecognizedClientException"),
            # A static identity with a session token it was never given.
            (kms_client(self.url, secret=self.fake.secret, token="bogus"),
             "UnrecognizedClientException"),
        )
        for client, code in cases:
            with self.subTest(code=code), client:
                with self.assertRaises(ClientError) as c:
                    self.gdk(client=client)
                self.assertEqual(error_code(c), code)
                self.assertEqual(c.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        self.assertEqual(self.fake.stats()["kms"]["GenerateDataKey"], 0)

    def test_tampered_body(self):
        # Once signed, swap the key alias in the body for another of the same length.
        def tamper(request, **_):
            request.body = request.body.replace(b"alias/adi-a", b"alias/adi-b")
        client = kms_client(self.url, secret=self.fake.secret)
        client.meta.events.register("before-send.kms.Encrypt", tamper)
        with client:
            with self.assertRaises(ClientError) as c:
                client.encrypt(KeyId="alias/adi-a", Plaintext=b"hello")
            self.assertEqual(error_code(c), "InvalidSignatureException")
            self.assertIn("signature we calculated does not match",
                          c.exception.response["Error"]["Message"])
            # The same client untampered for another operation works.
            self.assertEqual(len(self.gdk(client=client)["Plaintext"]), 32)

    def test_stale_and_future_date(self):
        for shift, words in ((-600, "Signature expired"), (600, "Signature not yet current")):
            class Shifted(datetime.datetime):
                @classmethod
                def utcnow(cls):
                    return datetime.datetime.utcnow() + datetime.timedelta(seconds=shift)
            with self.subTest(shift=shift), \
                    mock.patch.object(botocore.auth, "datetime",
                                      mock.Mock(datetime=Shifted)):
                with self.assertRaises(ClientError) as c:
                    self.gdk()
                self.assertEqual(error_code(c), "InvalidSignatureException")
                self.assertIn(words, c.exception.response["Error"]["Message"])
        # Within the 5 minutes of skew KMS allows: accepted.
        class Close(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return datetime.datetime.utcnow() - datetime.timedelta(seconds=200)
        with mock.patch.object(botocore.auth, "datetime", mock.Mock(datetime=Close)):
            self.gdk()

    def test_unsigned_and_malformed(self):
        client = kms_client(self.url, config=Config(signature_version=UNSIGNED,
                                                    retries={"total_max_attempts": 1}))
        with client:
            with self.assertRaises(ClientError) as c:
                self.gdk(client=client)
            self.assertEqual(error_code(c), "MissingAuthenticationTokenException")
        # Signed, but not what the operation takes.
        cases = ((b"not json", "SerializationException"),
                 (b"[1, 2]", "SerializationException"),
                 (b'{"Plaintext": "aGk="}', "ValidationException"),
                 (b'{"KeyId": "alias/adi-a", "Plaintext": "!!"}', "SerializationException"),
                 (b'{"KeyId": "alias/adi-a", "Plaintext": "aGk=", "EncryptionContext": {"a": 1}}',
                  "SerializationException"))
        for body, code in cases:
            status, reply = signed_raw(self.url, body, self.fake.secret)
            self.assertEqual((status, reply["__type"]), (400, code), body)
        status, reply = signed_raw(self.url, b"{}", self.fake.secret, target="TrentService.Nope")
        self.assertEqual((status, reply["__type"]), (400, "UnknownOperationException"))
        status, reply = signed_raw(self.url, b'{"KeyId": "alias/adi-a", "Plaintext": "aGk="}',
                                   self.fake.secret)
        self.assertEqual(status, 200, reply)
        # Over 64 KiB: 413 before anything is parsed.
        big = json.dumps({"KeyId": "alias/adi-a", "Plaintext": "A" * 70000}).encode()
        status, _ = signed_raw(self.url, big, self.fake.secret)
        self.assertEqual(status, 413)

    # ---- injected throttling and failures

    def test_injection(self):
        self.assertEqual(self.fake.control(throttle_next=1)["throttle_next"], 1)
        with self.assertRaises(ClientError) as c:
            self.gdk()
        self.assertEqual(error_code(c), "ThrottlingException")
        self.assertEqual(c.exception.response["Error"]["Message"], "Rate exceeded")
        self.fake.control(fail_next=1)
        with self.assertRaises(ClientError) as c:
            self.gdk()
        self.assertEqual(error_code(c), "KMSInternalException")
        self.assertEqual(c.exception.response["ResponseMetadata"]["HTTPStatusCode"], 500)
        self.gdk()  # both used up

        # botocore's standard retry mode retries both away.
        retrying = kms_client(self.url, secret=self.fake.secret,
                              config=Config(retries={"mode": "standard", "max_attempts": 5}))
        with retrying:
            self.fake.control(throttle_next=2, fail_next=1)
            self.gdk(client=retrying)
        s = self.fake.stats()
        self.assertEqual((s["throttled"], s["failed"], s["kms"]["GenerateDataKey"]), (3, 2, 2))
        self.assertEqual(s["rejected"], {"ThrottlingException": 3, "KMSInternalException": 2})

        # deny_context: only requests for that tenant fail, until cleared.
        r = self.gdk(ctx="ok-tenant")
        self.fake.control(deny_context="bad-tenant")
        with self.assertRaises(ClientError) as c:
            self.gdk(ctx="bad-tenant")
        self.assertEqual(error_code(c), "KMSInternalException")
        with self.assertRaises(ClientError) as c:
            self.kms.re_encrypt(CiphertextBlob=r["CiphertextBlob"],
                                SourceEncryptionContext={"tenant_id": "ok-tenant"},
                                DestinationKeyId="alias/adi-a",
                                DestinationEncryptionContext={"tenant_id": "bad-tenant"})
        self.assertEqual(error_code(c), "KMSInternalException")
        self.gdk(ctx="ok-tenant")
        self.assertIsNone(self.fake.control(deny_context=None)["deny_context"])
        self.gdk(ctx="bad-tenant")

        # An unauthenticated request does not use up an injection.
        self.fake.control(fail_next=1)
        with kms_client(self.url, secret="wrong") as bad:
            with self.assertRaises(ClientError) as c:
                self.gdk(client=bad)
            self.assertEqual(error_code(c), "InvalidSignatureException")
        self.assertEqual(self.fake.control()["fail_next"], 1)

    def test_control_validation(self):
        for body in ({"throttle_next": -1}, {"fail_next": "2"}, {"nope": 1}, {"reset": 1},
                     {"sts_ttl_s": 0}, {"deny_context": 5}, [1]):
            status, reply = http_json(self.url, "POST", "/_control", body)
            self.assertEqual(status, 400, body)
            self.assertIn("error", reply)
        self.assertEqual(self.fake.control(), {"throttle_next": 0, "fail_next": 0,
                                               "deny_context": None, "sts_ttl_s": 3600,
                                               "imds_ttl_s": 3600})
        status, _ = http_json(self.url, "GET", "/_control")
        self.assertEqual(status, 405)
        status, _ = http_json(self.url, "GET", "/nowhere")
        self.assertEqual(status, 404)

    # ---- STS and temporary identities

    def assume(self, **over):
        args = {"RoleArn": ROLE_ARN, "RoleSessionName": "adi-vault-test",
                "WebIdentityToken": self.fake.web_token, **over}
        with sts_client(self.url) as sts:
            return sts.assume_role_with_web_identity(**args)["Credentials"]

    def test_sts_web_identity(self):
        creds = self.assume()
        self.assertTrue(creds["AccessKeyId"].startswith("ASIA"))
        left = creds["Expiration"] - datetime.datetime.now(datetime.timezone.utc)
        self.assertTrue(3000 < left.total_seconds() <= 3600, left)
        again = self.assume()
        self.assertNotEqual(again["AccessKeyId"], creds["AccessKeyId"])
        self.assertEqual(self.fake.stats()["sts"], 2)
        status, issued = http_json(self.url, "GET", "/_issued")
        self.assertEqual(status, 200)
        mine = [i for i in issued["identities"] if i["access_key_id"] == creds["AccessKeyId"]]
        self.assertEqual([(i["secret_access_key"], i["session_token"], i["source"]) for i in mine],
                         [(creds["SecretAccessKey"], creds["SessionToken"], "sts")])

        with kms_client(self.url, creds["AccessKeyId"], creds["SecretAccessKey"],
                        creds["SessionToken"]) as temp:
            self.gdk(client=temp)
        # Without its session token, or with another identity's: not recognised.
        for token in (None, again["SessionToken"]):
            with kms_client(self.url, creds["AccessKeyId"], creds["SecretAccessKey"],
                            token) as temp:
                with self.assertRaises(ClientError) as c:
                    self.gdk(client=temp)
                self.assertEqual(error_code(c), "UnrecognizedClientException")
        # The right token with a wrong secret: a bad signature.
        with kms_client(self.url, creds["AccessKeyId"], self.fake.secret,
                        creds["SessionToken"]) as temp:
            with self.assertRaises(ClientError) as c:
                self.gdk(client=temp)
            self.assertEqual(error_code(c), "InvalidSignatureException")

        for over in ({"WebIdentityToken": "eyJwrong"},
                     {"RoleArn": "arn:aws:iam::123456789012:role/other"}):
            with self.assertRaises(ClientError) as c:
                self.assume(**over)
            self.assertEqual(error_code(c), "AccessDenied")
        with self.assertRaises(ClientError) as c:
            self.assume(RoleSessionName="bad name!")
        self.assertEqual(error_code(c), "ValidationError")

        # A shorter lifetime from now on; DurationSeconds caps it too.
        self.fake.control(sts_ttl_s=1000)
        c = self.assume()
        left = c["Expiration"] - datetime.datetime.now(datetime.timezone.utc)
        self.assertTrue(900 < left.total_seconds() <= 1000, left)
        c = self.assume(DurationSeconds=900)
        left = c["Expiration"] - datetime.datetime.now(datetime.timezone.utc)
        self.assertTrue(800 < left.total_seconds() <= 900, left)

    def test_expire_sessions(self):
        creds = self.assume()
        with kms_client(self.url, creds["AccessKeyId"], creds["SecretAccessKey"],
                        creds["SessionToken"]) as temp:
            self.gdk(client=temp)
            self.fake.control(expire_sessions=True)
            with self.assertRaises(ClientError) as c:
                self.gdk(client=temp)
            self.assertEqual(error_code(c), "ExpiredTokenException")
            self.assertEqual(c.exception.response["Error"]["Message"],
                             "The security token included in the request is expired")
        # A fresh identity works; the static one never expires.
        fresh = self.assume()
        with kms_client(self.url, fresh["AccessKeyId"], fresh["SecretAccessKey"],
                        fresh["SessionToken"]) as temp:
            self.gdk(client=temp)
        self.gdk()
        self.assertEqual(self.fake.stats()["rejected"], {"ExpiredTokenException": 1})

    # ---- IMDSv2

    def imds(self, method, path, headers=None):
        req = urllib.request.Request(self.url + path, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            e.close()
            return e.code, ""

    def test_imdsv2(self):
        base = "/latest/meta-data/iam/security-credentials/"
        self.assertEqual(self.imds("GET", base)[0], 401)  # IMDSv1: refused
        self.assertEqual(self.imds("GET", base, {"X-aws-ec2-metadata-token": "nope"})[0], 401)
        self.assertEqual(self.imds("PUT", "/latest/api/token")[0], 400)  # no TTL header
        status, token = self.imds("PUT", "/latest/api/token",
                                  {"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        self.assertEqual(status, 200)
        hdr = {"X-aws-ec2-metadata-token": token}
        self.assertEqual(self.imds("GET", base, hdr), (200, IMDS_ROLE))
        self.assertEqual(self.imds("GET", base + "other-role", hdr)[0], 404)
        self.fake.control(imds_ttl_s=1200)
        status, text = self.imds("GET", base + IMDS_ROLE, hdr)
        self.assertEqual(status, 200)
        doc = json.loads(text)
        self.assertEqual((doc["Code"], doc["Type"]), ("Success", "AWS-HMAC"))
        expires = datetime.datetime.strptime(doc["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        left = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
        self.assertTrue(1100 < left <= 1200, left)
        with kms_client(self.url, doc["AccessKeyId"], doc["SecretAccessKey"],
                        doc["Token"]) as temp:
            self.gdk(client=temp)
            self.fake.control(expire_sessions=True)
            with self.assertRaises(ClientError) as c:
                self.gdk(client=temp)
            self.assertEqual(error_code(c), "ExpiredTokenException")

        # botocore's own IMDSv2 client reads the same credentials.
        fetcher = InstanceMetadataFetcher(timeout=5, num_attempts=1, base_url=self.url)
        got = fetcher.retrieve_iam_role_credentials()
        fetcher._session.close()  # its connection pool (botocore gives the fetcher no close())
        self.assertEqual(got["role_name"], IMDS_ROLE)
        with kms_client(self.url, got["access_key"], got["secret_key"], got["token"]) as temp:
            self.gdk(client=temp)
        s = self.fake.stats()
        self.assertEqual((s["imds_token"], s["imds_credentials"]), (2, 2))

    # ---- last: the log, then (tearDownClass) SIGTERM

    def test_zz_log_holds_no_secret(self):
        # Make sure every kind of secret went through this server at least once.
        creds = self.assume()
        with kms_client(self.url, creds["AccessKeyId"], creds["SecretAccessKey"],
                        creds["SessionToken"]) as temp:
            self.gdk(client=temp)
        # The token in a GET query string (a form AWS accepts) must not be logged either.
        status, _ = self.imds("GET", "/?Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
                              f"&RoleArn={ROLE_ARN}&RoleSessionName=query-form"
                              f"&WebIdentityToken={self.fake.web_token}")
        self.assertEqual(status, 200)
        log = self.fake.read_log()
        self.assertIn(b"GenerateDataKey 200", log)
        secrets_seen = [self.fake.secret, self.fake.web_token, creds["SecretAccessKey"],
                        creds["SessionToken"]]
        for s in secrets_seen:
            self.assertNotIn(s.encode(), log)
        for p in self.plaintexts:
            self.assertNotIn(p, log)
            self.assertNotIn(base64.b64encode(p), log)


def fixture_env():
    """The fixture's variables: from the environment, else from ${ADI_TEST_DIR}/fake-aws/env (the
    suite fixture's cleanup restores the env file as it was before the suite, which may drop
    them); None when run by hand outside ctest."""
    if os.environ.get("ADI_FAKE_AWS_URL"):
        return os.environ
    if not os.environ.get("ADI_TEST_DIR"):
        return None
    out = {}
    with open(os.path.join(os.environ["ADI_TEST_DIR"], "fake-aws", "env")) as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            if key:
                out[key] = shlex.split(value)[0] if value else ""
    return out


class FixtureTest(unittest.TestCase):
    """The fixture's server (ctest fixture `fakeaws`), with what it published in the env file."""

    def setUp(self):
        self.env = fixture_env()
        if self.env is None:
            self.skipTest("neither ADI_FAKE_AWS_URL nor ADI_TEST_DIR is set (run through ctest)")

    def test_fixture(self):
        e = self.env
        url = e["ADI_FAKE_AWS_URL"]
        self.assertEqual(e["ADI_FAKE_AWS_REGION"], REGION)
        keys = e["ADI_FAKE_AWS_KEYS"].split(",")
        with kms_client(url, e["ADI_FAKE_AWS_ACCESS_KEY"], e["ADI_FAKE_AWS_SECRET_KEY"]) as kms:
            r = kms.encrypt(KeyId=keys[0], Plaintext=b"fixture",
                            EncryptionContext={"tenant_id": "fixture"})
            d = kms.decrypt(CiphertextBlob=r["CiphertextBlob"],
                            EncryptionContext={"tenant_id": "fixture"})
            self.assertEqual(d["Plaintext"], b"fixture")
        with open(e["ADI_FAKE_AWS_WEB_TOKEN_FILE"]) as f:
            token = f.read().strip()
        with sts_client(url) as sts:
            c = sts.assume_role_with_web_identity(RoleArn=e["ADI_FAKE_AWS_ROLE_ARN"],
                                                  RoleSessionName="fixture-test",
                                                  WebIdentityToken=token)["Credentials"]
        with kms_client(url, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]) as kms:
            kms.generate_data_key(KeyId=keys[1], KeySpec="AES_256")
        req = urllib.request.Request(url + "/latest/api/token", method="PUT",
                                     headers={"X-aws-ec2-metadata-token-ttl-seconds": "30"})
        with urllib.request.urlopen(req, timeout=WAIT) as r:
            tok = r.read().decode()
        req = urllib.request.Request(url + "/latest/meta-data/iam/security-credentials/",
                                     headers={"X-aws-ec2-metadata-token": tok})
        with urllib.request.urlopen(req, timeout=WAIT) as r:
            self.assertEqual(r.read().decode(), e["ADI_FAKE_AWS_IMDS_ROLE"])


if __name__ == "__main__":
    unittest.main()
