# SPDX-License-Identifier: MIT
"""adi-vault's aws KMS provider end to end, against the fake AWS server of the fixture `fakeaws`
(tests/harness/fake_aws.py: every KMS request's SigV4 signature checked with botocore's signer).

The suite runs adi-vault with KMS_PROVIDER=local. This module stops it (SIGTERM through its pid file,
its exact environment, argv and working directory read from /proc first) and runs adi-vault from
ADI_BIN_DIR with that environment but KMS_PROVIDER=aws, KMS_KEY_ID=alias/adi-a, AWS_REGION and the
three endpoints pointing at the fake, no DEK cache (DEK_CACHE_SIZE=0, so every credential write is a
KMS call), and one way of getting credentials per test class:
  - static keys (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY): CRUD through the gateway with the
    fake's counters showing GenerateDataKey and Decrypt; two throttled answers retried away (201);
    KMS failing on every attempt -> 503 {"error": {"code": "unavailable", ...}} naming nothing of
    AWS; the provider recovers once KMS does;
  - web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE through STS): the sessions expired by
    the fake -> the next request still succeeds, with a fresh STS identity;
  - IMDSv2 (no keys, no web identity): the same through the instance metadata service.
Each of those vaults appends to the suite's adi-vault.log and owns the pid file while it runs; it
must exit cleanly on SIGTERM without a sanitizer report. The module's cleanup (which runs whatever
failed) restores the original vault exactly as suite.sh started it: same argv, environment and
working directory, log appended, pid file rewritten, answering through the gateway again.
Last, no secret appears in any log file of the run: the tokens sent, the fake's secret key, the
web identity token, or any secret key or session token the fake issued (GET /_issued).
"""
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import unittest
import uuid

from gw_e2e import SANITIZER_MARKS, WAIT, env, http, wait_for

PASSWORD = "e2e-password-1"
BASE = "/api/platform-credentials/"
KEYS = {"id", "provider", "account_id", "expires_at", "created_at", "updated_at"}
MARK = "vaultawse2etok"  # in every token this module sends, to search the logs for
AWS_WORDS = ("aws", "kms", "exception", "throttl", "internal", "amazon", "signature", "token",
             "127.0.0.1")

STATE = {}  # module state: the original vault, the temporary directory, an admin's headers


def tag(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def token():
    return f"{MARK}-{uuid.uuid4().hex}"


def tenant_admin():
    body = {"name": tag("Tenant"), "admin_email": f"{tag('admin')}@e2e.example",
            "admin_password": PASSWORD}
    r = http("POST", "/api/tenants/", body)
    assert r.status == 201, r
    r = http("POST", "/api/auth/login/", {"username": body["admin_email"], "password": PASSWORD})
    assert r.status == 200, r
    return {"Authorization": f"Bearer {r.json()['access']}"}


# ---- the fake AWS server ---------------------------------------------------------------------


def fake(method, path, body=None):
    r = http(method, path, body, base=env("ADI_FAKE_AWS_URL"))
    assert r.status == 200, r
    return r.json()


def control(**kw):
    return fake("POST", "/_control", kw)


def stats():
    return fake("GET", "/_stats")


# ---- processes -------------------------------------------------------------------------------


def gone(pid):
    """True once `pid` has exited (a zombie not reaped yet counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def write_pidfile(path, pid):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{pid}\n")
    os.replace(tmp, path)


def vault_ready(ops_port, alive):
    """The vault's /readyz answers 200 (alive() raises when the process has exited)."""
    alive()
    try:
        return http("GET", "/readyz", base=f"http://127.0.0.1:{ops_port}", timeout=2).status == 200
    except OSError:
        return False


def routed(hdr):
    """Every gateway thread reaches the vault (4 answers in a row)."""
    return all(http("GET", BASE, headers=hdr).status == 200 for _ in range(4))


class OriginalVault:
    """The suite's adi-vault as suite.sh started it, read from /proc before it is stopped."""

    def __init__(self):
        self.pidfile = os.path.join(env("ADI_PIDS_DIR"), "adi-vault.pid")
        self.log_path = os.path.join(env("ADI_LOG_DIR"), "adi-vault.log")
        with open(self.pidfile) as f:
            self.pid = int(f.read().strip())
        with open(f"/proc/{self.pid}/cmdline", "rb") as f:
            self.argv = [os.fsdecode(a) for a in f.read().split(b"\0") if a]
        if not self.argv or os.path.basename(self.argv[0]) != "adi-vault":
            raise AssertionError(f"pid {self.pid} of {self.pidfile} is not adi-vault: {self.argv}")
        self.environ = read_environ(self.pid)
        self.cwd = os.readlink(f"/proc/{self.pid}/cwd")
        self.ops_port = self.environ["OPS_PORT"]
        self.stopped = False

    def stop(self):
        os.kill(self.pid, signal.SIGTERM)
        wait_for(lambda: gone(self.pid), "the suite's adi-vault to exit on SIGTERM")
        self.stopped = True

    def restore(self):
        """Starts the vault again as suite.sh did (`env ... adi-vault </dev/null >>log 2>&1 &`
        from a shell that then exits), rewrites the pid file and waits until it answers."""
        if not self.stopped:
            return
        out = subprocess.run(
            ["/bin/sh", "-c", 'log="$1"; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!', "sh",
             self.log_path, *self.argv],
            env=self.environ, cwd=self.cwd, stdout=subprocess.PIPE, check=True, timeout=WAIT)
        pid = int(out.stdout.decode().strip())
        write_pidfile(self.pidfile, pid)
        self.pid = pid

        def alive():
            if gone(pid):
                raise AssertionError("the restored adi-vault exited:\n" + tail(self.log_path))
        wait_for(lambda: vault_ready(self.ops_port, alive), "the restored adi-vault to be ready")
        self.stopped = False
        now = read_environ(pid)
        if now != self.environ:
            diff = sorted(k for k in set(now) | set(self.environ)
                          if now.get(k) != self.environ.get(k))
            raise AssertionError(f"the restored vault's environment differs in {diff}")
        wait_for(lambda: routed(STATE["admin"]), "the gateway to reach the restored vault")


def read_environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [e.partition(b"=") for e in f.read().split(b"\0") if e]
    return {os.fsdecode(k): os.fsdecode(v) for k, _, v in pairs}


def tail(path, n=60):
    with open(path, "rb") as f:
        return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")


class AwsVault:
    """adi-vault from ADI_BIN_DIR with the original environment, KMS_PROVIDER=aws and `creds`."""

    def __init__(self, original, creds):
        url = env("ADI_FAKE_AWS_URL")
        environ = {k: v for k, v in original.environ.items()
                   if not k.startswith(("AWS_", "KMS_"))}
        environ.update({
            "KMS_PROVIDER": "aws", "KMS_KEY_ID": "alias/adi-a",
            "AWS_REGION": env("ADI_FAKE_AWS_REGION"), "KMS_ENDPOINT": url,
            "AWS_STS_ENDPOINT": url, "AWS_EC2_METADATA_SERVICE_ENDPOINT": url,
            # Nothing from this machine's own AWS setup.
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(STATE["tmp"], "no-credentials"),
            "AWS_PROFILE": "default",
            # Every credential write is a KMS call.
            "DEK_CACHE_SIZE": "0",
        })
        environ.update(creds)
        self.original = original
        self.log_offset = os.path.getsize(original.log_path)
        with open(original.log_path, "ab") as log:
            self.proc = subprocess.Popen([os.path.join(env("ADI_BIN_DIR"), "adi-vault")],
                                         env=environ, cwd=original.cwd,
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        write_pidfile(original.pidfile, self.proc.pid)

        def alive():
            if self.proc.poll() is not None:
                raise AssertionError(f"adi-vault (aws) exited with {self.proc.returncode}:\n"
                                     + self.own_log())
        try:
            wait_for(lambda: vault_ready(original.ops_port, alive), "adi-vault (aws) to be ready")
            wait_for(lambda: routed(STATE["admin"]), "the gateway to reach adi-vault (aws)")
        except BaseException:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            raise

    def own_log(self):
        with open(self.original.log_path, "rb") as f:
            f.seek(self.log_offset)
            return f.read().decode("utf-8", "replace")

    def stop(self):
        """SIGTERM; fails unless it exits 0 within the wait and its log has no sanitizer report."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("adi-vault (aws) did not exit within 30 s of SIGTERM")
        log = self.own_log()
        if self.proc.returncode != 0:
            raise AssertionError(f"adi-vault (aws) exited with {self.proc.returncode}:\n{log}")
        bad = [m for m in SANITIZER_MARKS if m in log]
        if bad:
            raise AssertionError(f"sanitizer report from adi-vault (aws): {bad}\n{log}")


def setUpModule():
    STATE["tmp"] = tempfile.mkdtemp(prefix="e2e-vault-aws-")
    unittest.addModuleCleanup(shutil.rmtree, STATE["tmp"], True)
    STATE["admin"] = tenant_admin()
    wait_for(lambda: routed(STATE["admin"]), "the gateway to route to the suite's vault")
    original = OriginalVault()
    STATE["original"] = original
    unittest.addModuleCleanup(original.restore)
    original.stop()


# ---- the tests -------------------------------------------------------------------------------


class AwsCase(unittest.TestCase):
    CREDS = None  # the class's credential settings (a function of the fixture's env)

    @classmethod
    def setUpClass(cls):
        control(reset=True)
        cls.vault = AwsVault(STATE["original"], cls.CREDS())
        cls.addClassCleanup(cls.vault.stop)
        cls.admin = tenant_admin()

    def setUp(self):
        control(reset=True)

    def create(self, hdr=None, **over):
        body = {"provider": "META", "account_id": tag("act"), "access_token": token(),
                "refresh_token": token(), **over}
        return http("POST", BASE, body, headers=hdr or self.admin)

    def created(self, hdr=None):
        r = self.create(hdr)
        self.assertEqual(r.status, 201, r)
        self.assertNotIn(MARK, r.body.decode())
        return r.json()


class StaticKeys(AwsCase):
    CREDS = staticmethod(lambda: {"AWS_ACCESS_KEY_ID": env("ADI_FAKE_AWS_ACCESS_KEY"),
                                  "AWS_SECRET_ACCESS_KEY": env("ADI_FAKE_AWS_SECRET_KEY"),
                                  "AWS_EC2_METADATA_DISABLED": "true"})

    def test_crud_through_kms(self):
        hdr = tenant_admin()  # a tenant without a DEK yet
        c = self.created(hdr)
        self.assertEqual(set(c), KEYS)
        s = stats()
        self.assertEqual(s["kms"]["GenerateDataKey"], 1, s)
        self.assertEqual(s["rejected"], {}, s)
        url = f"{BASE}{c['id']}/"
        r = http("GET", url, headers=hdr)
        self.assertEqual((r.status, r.json()), (200, c))
        r = http("GET", BASE, headers=hdr)
        self.assertEqual(r.status, 200, r)
        self.assertEqual([x["id"] for x in r.json()], [c["id"]])
        # New tokens need the tenant's DEK back: Decrypt (no DEK cache).
        r = http("PATCH", url, {"access_token": token(), "account_id": c["account_id"] + "-b"},
                 headers=hdr)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["account_id"], c["account_id"] + "-b")
        self.created(hdr)
        s = stats()
        self.assertEqual(s["kms"]["GenerateDataKey"], 1, s)
        self.assertGreaterEqual(s["kms"]["Decrypt"], 2, s)
        self.assertEqual(s["rejected"], {}, s)
        r = http("DELETE", url, headers=hdr)
        self.assertEqual(r.status, 204, r)

    def test_throttled_then_retried(self):
        self.created()  # the tenant's DEK exists
        self.assertEqual(control(throttle_next=2)["throttle_next"], 2)
        self.created()
        s = stats()
        self.assertEqual((s["throttled"], s["rejected"]), (2, {"ThrottlingException": 2}), s)
        self.assertEqual(control()["throttle_next"], 0)

    def test_kms_down_is_503_without_detail(self):
        self.created()
        control(fail_next=100)
        try:
            for hdr in (self.admin, tenant_admin()):  # Decrypt, then GenerateDataKey
                r = self.create(hdr)
                self.assertEqual(r.status, 503, r)
                body = r.json()
                self.assertEqual(set(body), {"error"}, body)
                self.assertEqual(set(body["error"]), {"code", "message"}, body)
                self.assertEqual(body["error"]["code"], "unavailable", body)
                text = r.body.decode().lower()
                for word in AWS_WORDS + (env("ADI_FAKE_AWS_URL").lower(), MARK):
                    self.assertNotIn(word, text.replace('"unavailable"', ""), body)
            s = stats()
            self.assertGreaterEqual(s["failed"], 2, s)
            self.assertEqual(set(s["rejected"]), {"KMSInternalException"}, s)
            # The detail goes to the vault's log instead (event kms.error, AWS's error type).
            self.assertIn("KMSInternalException", self.vault.own_log())
        finally:
            control(fail_next=0)
        self.created()  # KMS is back: so is the vault

    def test_one_tenant_failing(self):
        # deny_context: KMS fails for one tenant (the encryption context is the tenant id) while
        # the others are served.
        hdr = tenant_admin()
        self.created(hdr)
        r = http("GET", "/api/me/", headers=hdr)
        self.assertEqual(r.status, 200, r)
        control(deny_context=r.json()["tenant_id"])
        try:
            r = self.create(hdr)
            self.assertEqual(r.status, 503, r)
            self.assertEqual(r.json()["error"]["code"], "unavailable")
            self.created()  # another tenant is unaffected
        finally:
            control(deny_context=None)
        self.created(hdr)


class WebIdentity(AwsCase):
    CREDS = staticmethod(lambda: {"AWS_ROLE_ARN": env("ADI_FAKE_AWS_ROLE_ARN"),
                                  "AWS_WEB_IDENTITY_TOKEN_FILE": env("ADI_FAKE_AWS_WEB_TOKEN_FILE"),
                                  "AWS_ROLE_SESSION_NAME": "adi-vault-e2e",
                                  "AWS_EC2_METADATA_DISABLED": "true"})

    def test_sts_and_expired_session(self):
        self.created()
        s = stats()
        before = s["sts"]
        self.assertGreaterEqual(s["kms"]["GenerateDataKey"] + s["kms"]["Decrypt"], 1, s)
        # The vault's identity is cached: further calls need no STS round trip.
        self.created()
        self.assertEqual(stats()["sts"], before)
        self.assertTrue(control(expire_sessions=True))
        self.created()
        s = stats()
        self.assertGreater(s["sts"], before, s)
        self.assertGreaterEqual(s["rejected"].get("ExpiredTokenException", 0), 1, s)
        self.assertEqual(set(s["rejected"]) - {"ExpiredTokenException"}, set(), s)
        self.created()

    def test_throttled_sts_identity(self):
        # Retries also hold with temporary credentials.
        self.created()
        control(throttle_next=2)
        self.created()
        self.assertEqual(stats()["throttled"], 2)


class Imds(AwsCase):
    CREDS = staticmethod(lambda: {})

    def test_imds_and_expired_session(self):
        self.created()
        s = stats()
        self.assertGreaterEqual(s["imds_token"], 1, s)
        self.assertGreaterEqual(s["imds_credentials"], 1, s)
        self.assertEqual(s["sts"], 0, s)
        before = s["imds_credentials"]
        control(expire_sessions=True)
        self.created()
        s = stats()
        self.assertGreater(s["imds_credentials"], before, s)


class ZzLogs(unittest.TestCase):
    """Runs last (classes run in name order): no secret of this run in any log file."""

    def test_no_secret_in_any_log(self):
        issued = fake("GET", "/_issued")["identities"]
        with open(env("ADI_FAKE_AWS_WEB_TOKEN_FILE")) as f:
            web_token = f.read().strip()
        needles = {MARK: "a token sent", env("ADI_FAKE_AWS_SECRET_KEY"): "the fake's secret key",
                   web_token: "the web identity token"}
        for i in issued:
            needles[i["secret_access_key"]] = f"the secret key of {i['access_key_id']}"
            needles[i["session_token"]] = f"the session token of {i['access_key_id']}"
        self.assertTrue(any(i["source"] == "sts" for i in issued), issued)
        self.assertTrue(any(i["source"] == "imds" for i in issued), issued)
        logs = [p for p in glob.glob(os.path.join(env("ADI_LOG_DIR"), "*")) if os.path.isfile(p)]
        self.assertIn(os.path.join(env("ADI_LOG_DIR"), "adi-vault.log"), logs)
        for path in logs:
            with open(path, "rb") as f:
                text = f.read()
            for needle, what in needles.items():
                self.assertNotIn(needle.encode(), text, f"{what} is in {path}")


if __name__ == "__main__":
    unittest.main()
