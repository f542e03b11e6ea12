#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A local stand-in for the three AWS APIs adi-vault's aws KMS provider talks to, for tests.

One process, one loopback HTTP/1.1 port, serving:
  - KMS (POST /, X-Amz-Target: TrentService.<Op>): GenerateDataKey, Decrypt, Encrypt, ReEncrypt,
    every request's SigV4 signature VERIFIED with botocore's own signer (botocore.auth.SigV4Auth:
    canonical_request, string_to_sign, signature), rejected the way KMS rejects it otherwise;
  - STS AssumeRoleWithWebIdentity (unsigned, form body or query), answering AWS's XML;
  - IMDSv2 (PUT /latest/api/token, then the role's credentials under /latest/meta-data/iam/...);
  - /_control (inject throttling and failures, expire sessions, TTLs, reset) and /_stats, for tests;
    also GET /_issued (an addition to the contract, loopback only like the others): every temporary
    identity issued so far with its secrets, so a test can check that none reached a log.

It is the other side of adi-vault's aws provider (libs/kms, adi/kms.h); the error types, status
codes and JSON/XML shapes are AWS's (see each handler). Ciphertext blobs are this
server's own format (AES-256-GCM under a per-process random key per KMS key, the key's uuid and the
canonical encryption context as associated data), opaque to clients.

Nothing logged ever holds a secret key, a session token, an IMDS token, a web identity token or a
plaintext: request lines are logged without their query string, and errors are logged by type.
Run: fake_aws.py --port-file PATH [--port 0] [--region us-east-1] --access-key AK --secret-key SK
     --keys alias/a,alias/b --role-arn ARN --web-identity-token TEXT --imds-role NAME [--log PATH]
     [--exit-when-gone PATH]
It writes its port to --port-file (atomically) once listening and runs until SIGTERM or SIGINT.
"""
import argparse
import base64
import binascii
import datetime
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import signal
import socket
import string
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape as xml_escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ACCOUNT = "123456789012"
MAX_BODY = 64 * 1024  # bytes: larger request bodies are refused with 413
SKEW_S = 300  # seconds X-Amz-Date may be off the server's clock
DEFAULT_TTL_S = 3600
MAX_IDENTITIES = 10000  # temporary identities remembered (oldest forgotten first)
MAX_IMDS_TOKENS = 10000
AMZ_JSON = "application/x-amz-json-1.1"
SIGV4_TIME = "%Y%m%dT%H%M%SZ"
BLOB_MAGIC = b"ADIFKMS1"  # ciphertext blob: magic | key uuid (16) | nonce (12) | AES-GCM output
KEY_NS = uuid.UUID("5b0f3c52-4d7a-4c0e-9a51-8f2f6a0e7d11")  # uuid5 namespace for key ids
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,"
    r"\s*Signature=([0-9a-fA-F]+)\s*$")
SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
KMS_OPS = ("GenerateDataKey", "Decrypt", "Encrypt", "ReEncrypt")

log = logging.getLogger("fake_aws")


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso_z(ts):
    """Epoch seconds as AWS's 2026-11-27T21:00:00Z."""
    return datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def random_text(n, alphabet=string.ascii_letters + string.digits):
    return "".join(secrets.choice(alphabet) for _ in range(n))


class AwsError(Exception):
    """An error answered to the client: KMS JSON {"__type", "message"} or STS XML."""

    def __init__(self, type_, message, status=400):
        super().__init__(message)
        self.type = type_
        self.message = message
        self.status = status


# ---- state -------------------------------------------------------------------------------------


class Key:
    """A KMS key: its alias, a uuid derived from the alias, its ARN and random material."""

    def __init__(self, alias, region):
        self.alias = alias
        self.uuid = uuid.uuid5(KEY_NS, alias)
        self.arn = f"arn:aws:kms:{region}:{ACCOUNT}:key/{self.uuid}"
        self.alias_arn = f"arn:aws:kms:{region}:{ACCOUNT}:{alias}"
        self.aead = AESGCM(AESGCM.generate_key(bit_length=256))


class Identity:
    """An access key id's secret, and for a temporary identity its session token and expiry."""

    def __init__(self, access_key, secret_key, token=None, expires=None, source="static"):
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token  # None for the static identity
        self.expires = expires  # epoch seconds, None = never
        self.source = source  # "static", "sts" or "imds"


class State:
    """Everything the handlers share, behind one lock."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.region = args.region
        self.role_arn = args.role_arn
        self.web_token = args.web_identity_token
        self.imds_role = args.imds_role
        self.keys = [Key(a, args.region) for a in args.keys]
        self.identities = {args.access_key: Identity(args.access_key, args.secret_key)}
        self.static_key = args.access_key
        self.temp_order = []  # temporary access key ids, oldest first
        self.imds_tokens = {}  # token -> expiry (epoch seconds)
        self.reset_injections()
        self.reset_counters()

    def reset_injections(self):
        self.throttle_next = 0
        self.fail_next = 0
        self.deny_context = None
        self.sts_ttl_s = DEFAULT_TTL_S
        self.imds_ttl_s = DEFAULT_TTL_S

    def reset_counters(self):
        self.kms = {op: 0 for op in KMS_OPS}
        self.rejected = {}
        self.sts = 0
        self.imds_token = 0
        self.imds_credentials = 0
        self.throttled = 0
        self.failed = 0

    def control_view(self):
        return {"throttle_next": self.throttle_next, "fail_next": self.fail_next,
                "deny_context": self.deny_context, "sts_ttl_s": self.sts_ttl_s,
                "imds_ttl_s": self.imds_ttl_s}

    def stats_view(self):
        return {"kms": dict(self.kms), "rejected": dict(self.rejected), "sts": self.sts,
                "imds_token": self.imds_token, "imds_credentials": self.imds_credentials,
                "throttled": self.throttled, "failed": self.failed}

    def reject(self, type_):
        with self.lock:
            self.rejected[type_] = self.rejected.get(type_, 0) + 1

    def find_key(self, key_id):
        """The key named by alias, alias ARN, key ARN or uuid; None when unknown."""
        for k in self.keys:
            if key_id in (k.alias, k.alias_arn, k.arn, str(k.uuid)):
                return k
        return None

    def key_by_uuid(self, raw):
        for k in self.keys:
            if k.uuid.bytes == raw:
                return k
        return None

    def issue(self, source, ttl_s):
        """A fresh temporary identity (ASIA... access key, secret, session token)."""
        ident = Identity("ASIA" + random_text(16, string.ascii_uppercase + string.digits),
                         random_text(40, string.ascii_letters + string.digits + "+/"),
                         "IQoJb3JpZ2luX2VjE" + base64.b64encode(secrets.token_bytes(180)).decode(),
                         time.time() + ttl_s, source)
        with self.lock:
            self.identities[ident.access_key] = ident
            self.temp_order.append(ident.access_key)
            while len(self.temp_order) > MAX_IDENTITIES:
                self.identities.pop(self.temp_order.pop(0), None)
        return ident


# ---- KMS ciphertext blobs ----------------------------------------------------------------------


def context_aad(key, ctx):
    canon = json.dumps(ctx, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return BLOB_MAGIC + key.uuid.bytes + canon.encode("utf-8")


def seal(key, plaintext, ctx):
    nonce = secrets.token_bytes(12)
    return BLOB_MAGIC + key.uuid.bytes + nonce + key.aead.encrypt(nonce, plaintext,
                                                                  context_aad(key, ctx))


def unseal(state, blob, ctx):
    """(key, plaintext) of a blob made by seal under `ctx`, else InvalidCiphertextException."""
    head = len(BLOB_MAGIC)
    if len(blob) < head + 16 + 12 + 16 or not blob.startswith(BLOB_MAGIC):
        raise AwsError("InvalidCiphertextException", "")
    key = state.key_by_uuid(blob[head:head + 16])
    if key is None:
        raise AwsError("InvalidCiphertextException", "")
    nonce = blob[head + 16:head + 28]
    try:
        return key, key.aead.decrypt(nonce, blob[head + 28:], context_aad(key, ctx))
    except Exception:  # cryptography's InvalidTag: wrong context or damage
        raise AwsError("InvalidCiphertextException", "") from None


# ---- SigV4 verification with botocore's signer ---------------------------------------------------


class ReceivedSigV4(SigV4Auth):
    """botocore's SigV4Auth for a received request: the headers to sign are exactly those the
    Authorization header names (botocore would otherwise add host and drop its blacklist)."""

    def __init__(self, credentials, service_name, region_name, signed_names):
        super().__init__(credentials, service_name, region_name)
        self._signed_names = signed_names

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed_names:
                header_map[name.lower()] = value
        return header_map


def expected_signature(identity, service, region, method, url, headers, signed_names, body,
                       amz_date):
    """The signature botocore computes for this request with the identity's secret key."""
    req = AWSRequest(method=method, url=url, headers=headers, data=body)
    req.context["timestamp"] = amz_date
    signer = ReceivedSigV4(Credentials(identity.access_key, identity.secret_key, identity.token),
                           service, region, signed_names)
    canonical = signer.canonical_request(req)
    return signer.signature(signer.string_to_sign(req, canonical), req)


# ---- the HTTP handler ---------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-aws"
    sys_version = ""
    timeout = 60  # seconds an idle keep-alive connection is kept

    @property
    def state(self):
        return self.server.state

    # The default logs the request line, query string included (a web identity token could be in
    # it): log our own line instead.
    def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's signature)
        pass

    def log_request(self, code="-", size="-"):
        pass

    def note(self, what, status, detail=""):
        path = urllib.parse.urlsplit(self.path).path
        log.info("%s %s %s %s %s", self.command, path, what, status, detail)

    # ---- plumbing

    def send(self, status, body, content_type, extra=None):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj, content_type="application/json"):
        self.send(status, json.dumps(obj), content_type)

    def read_body(self):
        """The request body (bounded); None after answering 411/413/400 itself."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            self.send_json(411, {"message": "Content-Length required"})
            self.note("-", 411, "chunked body")
            return None
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            n = int(raw)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self.send_json(400, {"message": "bad Content-Length"})
            self.note("-", 400, "bad Content-Length")
            return None
        if n > MAX_BODY:
            self.close_connection = True
            self.send_json(413, {"message": f"request body over {MAX_BODY} bytes"})
            self.note("-", 413, f"body of {n} bytes")
            return None
        body = b""
        while len(body) < n:
            chunk = self.rfile.read(n - len(body))
            if not chunk:
                self.close_connection = True
                return None
            body += chunk
        return body

    def dispatch(self):
        try:
            self.route()
        except (ConnectionError, socket.timeout):
            self.close_connection = True
        except Exception as e:  # a bug here must not end the server: answer 500, log the type
            log.error("%s %s: internal error %s", self.command,
                      urllib.parse.urlsplit(self.path).path, type(e).__name__)
            self.close_connection = True
            try:
                self.send_json(500, {"__type": "InternalFailure", "message": "internal error"})
            except OSError:
                pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = dispatch

    def route(self):
        url = urllib.parse.urlsplit(self.path)
        body = self.read_body()
        if body is None:
            return
        path, method = url.path, self.command
        if path in ("/_control", "/_stats", "/_issued"):
            return self.control(path, method, body)
        if path.startswith("/latest/"):
            return self.imds(path, method)
        if path == "/":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
            if method == "POST" and (self.headers.get("X-Amz-Target") is not None
                                     or ctype.startswith("application/x-amz-json")):
                return self.kms(url, body)
            if (method == "POST" and ctype == "application/x-www-form-urlencoded") or (
                    method == "GET" and "Action" in query):
                return self.sts(method, url, body)
        self.send_json(404, {"message": "not found"})
        self.note("-", 404)

    # ---- /_control and /_stats

    def control(self, path, method, body):
        host = self.client_address[0]
        if host not in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
            self.send_json(403, {"error": "loopback only"})
            return self.note("control", 403)
        st = self.state
        if path == "/_stats" and method == "GET":
            with st.lock:
                view = st.stats_view()
            return self.send_json(200, view)
        if path == "/_issued" and method == "GET":
            with st.lock:
                view = [{"access_key_id": i.access_key, "secret_access_key": i.secret_key,
                         "session_token": i.token, "source": i.source,
                         "expiration": iso_z(i.expires)}
                        for i in (st.identities[k] for k in st.temp_order)]
            return self.send_json(200, {"identities": view})
        if path != "/_control" or method != "POST":
            self.send_json(405, {"error": "GET /_stats, GET /_issued or POST /_control"})
            return self.note("control", 405)
        try:
            req = json.loads(body.decode("utf-8") or "{}")
            if not isinstance(req, dict):
                raise ValueError("the body must be a JSON object")
            changes = self.parse_control(req)
        except (ValueError, UnicodeDecodeError) as e:
            self.send_json(400, {"error": str(e)})
            return self.note("control", 400)
        now = time.time()
        with st.lock:
            if changes.pop("reset", False):
                st.reset_injections()
                st.reset_counters()
            if changes.pop("expire_sessions", False):
                for ident in st.identities.values():
                    if ident.token is not None:
                        ident.expires = min(ident.expires, now - 1)
            for k, v in changes.items():
                setattr(st, k, v)
            view = st.control_view()
        self.send_json(200, view)
        self.note("control", 200, " ".join(sorted(req)))

    @staticmethod
    def parse_control(req):
        out = {}
        for k, v in req.items():
            if k in ("throttle_next", "fail_next", "sts_ttl_s", "imds_ttl_s"):
                if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                    raise ValueError(f"{k} must be a non-negative integer")
                if k.endswith("_ttl_s") and v < 1:
                    raise ValueError(f"{k} must be at least 1")
                out[k] = v
            elif k == "deny_context":
                if v is not None and not isinstance(v, str):
                    raise ValueError("deny_context must be a string or null")
                out[k] = v
            elif k in ("expire_sessions", "reset"):
                if not isinstance(v, bool):
                    raise ValueError(f"{k} must be a boolean")
                out[k] = v
            else:
                raise ValueError(f"unknown control key {k!r}")
        return out

    # ---- IMDSv2

    def imds(self, path, method):
        st = self.state
        now = time.time()
        if path == "/latest/api/token":
            if method != "PUT":
                self.send(405, "", "text/plain")
                return self.note("imds", 405)
            raw = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            try:
                ttl = int(raw)
                if not 1 <= ttl <= 21600:
                    raise ValueError
            except (TypeError, ValueError):
                self.send(400, "", "text/plain")
                return self.note("imds", 400, "bad token ttl")
            if self.headers.get("X-Forwarded-For") is not None:
                self.send(403, "", "text/plain")
                return self.note("imds", 403, "X-Forwarded-For")
            token = base64.urlsafe_b64encode(secrets.token_bytes(42)).decode()
            with st.lock:
                st.imds_tokens = {t: e for t, e in st.imds_tokens.items() if e > now}
                if len(st.imds_tokens) >= MAX_IMDS_TOKENS:
                    st.imds_tokens.pop(next(iter(st.imds_tokens)))
                st.imds_tokens[token] = now + ttl
                st.imds_token += 1
            self.send(200, token, "text/plain",
                      {"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)})
            return self.note("imds", 200, "token")
        if method not in ("GET", "HEAD"):
            self.send(405, "", "text/plain")
            return self.note("imds", 405)
        token = self.headers.get("X-aws-ec2-metadata-token")
        with st.lock:
            valid = token is not None and st.imds_tokens.get(token, 0) > now
        if not valid:
            self.send(401, "", "text/plain")
            return self.note("imds", 401, "no valid token")
        prefix = "/latest/meta-data/iam/security-credentials/"
        if path in (prefix, prefix.rstrip("/")):
            self.send(200, st.imds_role, "text/plain")
            return self.note("imds", 200, "role")
        if path.startswith(prefix) and path[len(prefix):] == st.imds_role:
            with st.lock:
                ttl = st.imds_ttl_s
            ident = st.issue("imds", ttl)
            with st.lock:
                st.imds_credentials += 1
            doc = {"Code": "Success", "LastUpdated": iso_z(now), "Type": "AWS-HMAC",
                   "AccessKeyId": ident.access_key, "SecretAccessKey": ident.secret_key,
                   "Token": ident.token, "Expiration": iso_z(ident.expires)}
            self.send(200, json.dumps(doc, indent=2), "text/plain")
            return self.note("imds", 200, f"credentials {ident.access_key}")
        self.send(404, "", "text/plain")
        self.note("imds", 404)

    # ---- STS

    def sts_error(self, code, message, status=400):
        body = (f'<ErrorResponse xmlns="{STS_NS}"><Error><Type>Sender</Type>'
                f"<Code>{xml_escape(code)}</Code><Message>{xml_escape(message)}</Message>"
                f"</Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
        self.state.reject(code)
        self.send(status, body, "text/xml")
        self.note("sts", status, code)

    def sts(self, method, url, body):
        st = self.state
        if method == "POST":
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                return self.sts_error("MalformedQueryString", "The body is not UTF-8.")
        else:
            text = url.query
        params = {k: v[-1] for k, v in
                  urllib.parse.parse_qs(text, keep_blank_values=True).items()}
        action = params.get("Action")
        if action != "AssumeRoleWithWebIdentity":
            return self.sts_error("InvalidAction", f"Could not find operation {action} for "
                                  "version 2011-06-15")
        if params.get("Version") != "2011-06-15":
            return self.sts_error("InvalidAction", "Version must be 2011-06-15")
        for name in ("RoleArn", "RoleSessionName", "WebIdentityToken"):
            if not params.get(name):
                return self.sts_error("ValidationError", f"1 validation error detected: Value "
                                      f"null at '{name[0].lower() + name[1:]}' failed to satisfy "
                                      "constraint: Member must not be null")
        if not SESSION_NAME_RE.match(params["RoleSessionName"]):
            return self.sts_error("ValidationError", "1 validation error detected: Value at "
                                  "'roleSessionName' failed to satisfy constraint: Member must "
                                  "satisfy regular expression pattern: [\\w+=,.@-]*")
        with st.lock:
            ttl = st.sts_ttl_s
        if "DurationSeconds" in params:
            try:
                d = int(params["DurationSeconds"])
                if not 900 <= d <= 43200:
                    raise ValueError
            except ValueError:
                return self.sts_error("ValidationError", "1 validation error detected: Value at "
                                      "'durationSeconds' failed to satisfy constraint: Member "
                                      "must have value between 900 and 43200")
            ttl = min(ttl, d)
        if params["RoleArn"] != st.role_arn:
            return self.sts_error("AccessDenied", "Not authorized to perform "
                                  "sts:AssumeRoleWithWebIdentity")
        if not hmac.compare_digest(params["WebIdentityToken"].encode(), st.web_token.encode()):
            return self.sts_error("AccessDenied", "Not authorized to perform "
                                  "sts:AssumeRoleWithWebIdentity")
        ident = st.issue("sts", ttl)
        with st.lock:
            st.sts += 1
        session = xml_escape(params["RoleSessionName"])
        role_name = st.role_arn.rsplit("/", 1)[-1]
        role_id = "AROA" + hashlib.sha256(st.role_arn.encode()).hexdigest()[:17].upper()
        assumed = f"arn:aws:sts::{ACCOUNT}:assumed-role/{xml_escape(role_name)}/{session}"
        xml = (f'<AssumeRoleWithWebIdentityResponse xmlns="{STS_NS}">\n'
               "  <AssumeRoleWithWebIdentityResult>\n"
               "    <SubjectFromWebIdentityToken>system:serviceaccount:adi:adi-vault"
               "</SubjectFromWebIdentityToken>\n"
               f"    <Audience>sts.amazonaws.com</Audience>\n"
               "    <AssumedRoleUser>\n"
               f"      <Arn>{assumed}</Arn>\n"
               f"      <AssumedRoleId>{role_id}:{session}</AssumedRoleId>\n"
               "    </AssumedRoleUser>\n"
               "    <Credentials>\n"
               f"      <AccessKeyId>{ident.access_key}</AccessKeyId>\n"
               f"      <SecretAccessKey>{xml_escape(ident.secret_key)}</SecretAccessKey>\n"
               f"      <SessionToken>{xml_escape(ident.token)}</SessionToken>\n"
               f"      <Expiration>{iso_z(ident.expires)}</Expiration>\n"
               "    </Credentials>\n"
               "    <Provider>oidc.eks.us-east-1.amazonaws.com/id/ADIFAKE</Provider>\n"
               "  </AssumeRoleWithWebIdentityResult>\n"
               "  <ResponseMetadata>\n"
               f"    <RequestId>{uuid.uuid4()}</RequestId>\n"
               "  </ResponseMetadata>\n"
               "</AssumeRoleWithWebIdentityResponse>\n")
        self.send(200, xml, "text/xml")
        self.note("sts", 200, f"AssumeRoleWithWebIdentity {ident.access_key}")

    # ---- KMS

    def kms(self, url, body):
        target = self.headers.get("X-Amz-Target") or ""
        op = target[len("TrentService."):] if target.startswith("TrentService.") else target
        try:
            ident = self.authenticate(url, body)
            if op not in KMS_OPS:
                raise AwsError("UnknownOperationException", "")
            req = parse_kms_body(body)
            self.inject(req)
            reply, detail = getattr(self, "op_" + op)(req)
        except AwsError as e:
            self.state.reject(e.type)
            self.send_json(e.status, {"__type": e.type, "message": e.message}, AMZ_JSON)
            return self.note(f"kms {op or '-'}", e.status, e.type)
        with self.state.lock:
            self.state.kms[op] += 1
        self.send_json(200, reply, AMZ_JSON)
        self.note(f"kms {op}", 200, f"{detail} ak={ident.access_key}")

    def authenticate(self, url, body):
        """The identity that signed this request, else the AwsError KMS would answer."""
        st = self.state
        auth = self.headers.get("Authorization")
        if auth is None:
            raise AwsError("MissingAuthenticationTokenException", "Missing Authentication Token")
        m = AUTH_RE.match(auth.strip())
        if m is None:
            raise AwsError("IncompleteSignatureException",
                           "Authorization header requires 'Credential', 'Signature' and "
                           "'SignedHeaders' parameters of the form "
                           "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...")
        credential, signed, signature = m.group(1), m.group(2), m.group(3).lower()
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise AwsError("IncompleteSignatureException",
                           "Credential should be scoped to a valid region, service and "
                           "aws4_request terminator.")
        access_key, scope_date, region, service, _ = parts
        signed_names = signed.lower().split(";")
        if "host" not in signed_names:
            raise AwsError("IncompleteSignatureException",
                           "'Host' must be a 'SignedHeader' in the AWS Authorization.")
        amz_date = self.headers.get("X-Amz-Date")
        if amz_date is None:
            raise AwsError("IncompleteSignatureException",
                           "Authorization header requires existence of either a 'X-Amz-Date' "
                           "or a 'Date' header.")
        try:
            when = datetime.datetime.strptime(amz_date, SIGV4_TIME).replace(
                tzinfo=datetime.timezone.utc)
        except ValueError:
            raise AwsError("IncompleteSignatureException",
                           "Date must be in ISO-8601 'basic format'.") from None
        with st.lock:
            ident = st.identities.get(access_key)
        if ident is None:
            raise AwsError("UnrecognizedClientException",
                           "The security token included in the request is invalid.")
        if region != st.region:
            raise AwsError("InvalidSignatureException",
                           "Credential should be scoped to a valid region. ")
        if service != "kms":
            raise AwsError("InvalidSignatureException",
                           "Credential should be scoped to correct service: 'kms'. ")
        if scope_date != amz_date[:8]:
            raise AwsError("InvalidSignatureException",
                           f"Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                           f"version of date from HTTP: '{scope_date}' != '{amz_date[:8]}', "
                           f"from '{amz_date}'.")
        now = utcnow()
        skew = datetime.timedelta(seconds=SKEW_S)
        stamp = now.strftime(SIGV4_TIME)
        if when < now - skew:
            raise AwsError("InvalidSignatureException",
                           f"Signature expired: {amz_date} is now earlier than "
                           f"{(now - skew).strftime(SIGV4_TIME)} ({stamp} - 5 min.)")
        if when > now + skew:
            raise AwsError("InvalidSignatureException",
                           f"Signature not yet current: {amz_date} is still later than "
                           f"{(now + skew).strftime(SIGV4_TIME)} ({stamp} + 5 min.)")
        token = self.headers.get("X-Amz-Security-Token")
        if ident.token is None:
            if token is not None:
                raise AwsError("UnrecognizedClientException",
                               "The security token included in the request is invalid.")
        elif token is None or not hmac.compare_digest(token.encode(), ident.token.encode()):
            raise AwsError("UnrecognizedClientException",
                           "The security token included in the request is invalid.")
        claimed = self.headers.get("X-Amz-Content-SHA256")
        if claimed is not None and claimed != hashlib.sha256(body).hexdigest():
            raise AwsError("InvalidSignatureException",
                           "The provided 'x-amz-content-sha256' header does not match what was "
                           "computed.")
        headers = HTTPHeaders()
        for name, value in self.headers.items():  # every value of every header, in order
            headers[name] = value
        host = self.headers.get("Host") or ""
        want = expected_signature(ident, "kms", st.region, self.command,
                                  f"http://{host}{self.path}", headers, set(signed_names), body,
                                  amz_date)
        if not hmac.compare_digest(want.encode(), signature.encode()):
            raise AwsError("InvalidSignatureException",
                           "The request signature we calculated does not match the signature "
                           "you provided. Check your AWS Secret Access Key and signing method. "
                           "Consult the service documentation for details.")
        if ident.expires is not None and ident.expires <= time.time():
            raise AwsError("ExpiredTokenException",
                           "The security token included in the request is expired")
        return ident

    def inject(self, req):
        """Applies the injected throttling and failures to an authenticated KMS request."""
        st = self.state
        with st.lock:
            if st.throttle_next > 0:
                st.throttle_next -= 1
                st.throttled += 1
                raise AwsError("ThrottlingException", "Rate exceeded")
            if st.fail_next > 0:
                st.fail_next -= 1
                st.failed += 1
                raise AwsError("KMSInternalException", "An internal error occurred.", 500)
            deny = st.deny_context
            if deny is not None:
                for field in ("EncryptionContext", "SourceEncryptionContext",
                              "DestinationEncryptionContext"):
                    ctx = req.get(field)
                    if isinstance(ctx, dict) and deny in ctx.values():
                        st.failed += 1
                        raise AwsError("KMSInternalException", "An internal error occurred.",
                                       500)

    # ---- the four operations: (reply, log detail); no plaintext is ever logged

    def key_or_404(self, key_id):
        key = self.state.find_key(key_id)
        if key is None:
            if key_id.startswith("alias/") or ":alias/" in key_id:
                name = key_id if key_id.startswith("arn:") else (
                    f"arn:aws:kms:{self.state.region}:{ACCOUNT}:{key_id}")
                raise AwsError("NotFoundException", f"Alias {name} is not found.")
            raise AwsError("NotFoundException", f"Key '{key_id}' does not exist")
        return key

    def op_GenerateDataKey(self, req):
        key = self.key_or_404(need_str(req, "KeyId"))
        ctx = context_of(req, "EncryptionContext")
        spec, nbytes = req.get("KeySpec"), req.get("NumberOfBytes")
        if spec is not None and nbytes is not None:
            raise AwsError("ValidationException",
                           "Please specify either number of bytes or key spec.")
        if spec is not None:
            if spec not in ("AES_256", "AES_128"):
                raise AwsError("ValidationException", "1 validation error detected: Value "
                               f"'{spec}' at 'keySpec' failed to satisfy constraint: Member "
                               "must satisfy enum value set: [AES_256, AES_128]")
            n = 32 if spec == "AES_256" else 16
        elif nbytes is not None:
            if isinstance(nbytes, bool) or not isinstance(nbytes, int):
                raise AwsError("SerializationException", "NumberOfBytes must be an integer")
            if not 1 <= nbytes <= 1024:
                raise AwsError("ValidationException", "1 validation error detected: Value "
                               f"'{nbytes}' at 'numberOfBytes' failed to satisfy constraint: "
                               "Member must have value between 1 and 1024")
            n = nbytes
        else:
            raise AwsError("ValidationException",
                           "Please specify either number of bytes or key spec.")
        plain = secrets.token_bytes(n)
        blob = seal(key, plain, ctx)
        return ({"CiphertextBlob": b64(blob), "Plaintext": b64(plain), "KeyId": key.arn},
                f"key={key.alias}")

    def op_Encrypt(self, req):
        key = self.key_or_404(need_str(req, "KeyId"))
        plain = need_blob(req, "Plaintext")
        if not 1 <= len(plain) <= 4096:
            raise AwsError("ValidationException", "1 validation error detected: Value at "
                           "'plaintext' failed to satisfy constraint: Member must have length "
                           "less than or equal to 4096")
        ctx = context_of(req, "EncryptionContext")
        return ({"CiphertextBlob": b64(seal(key, plain, ctx)), "KeyId": key.arn,
                 "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, f"key={key.alias}")

    def op_Decrypt(self, req):
        blob = need_blob(req, "CiphertextBlob")
        ctx = context_of(req, "EncryptionContext")
        named = None
        if req.get("KeyId") is not None:
            named = self.key_or_404(need_str(req, "KeyId"))
        key, plain = unseal(self.state, blob, ctx)
        if named is not None and named is not key:
            raise AwsError("IncorrectKeyException", "The key ID in the request does not "
                           "identify a CMK that can perform this operation.")
        return ({"Plaintext": b64(plain), "KeyId": key.arn,
                 "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}, f"key={key.alias}")

    def op_ReEncrypt(self, req):
        blob = need_blob(req, "CiphertextBlob")
        dest = self.key_or_404(need_str(req, "DestinationKeyId"))
        src_ctx = context_of(req, "SourceEncryptionContext")
        dst_ctx = context_of(req, "DestinationEncryptionContext")
        named = None
        if req.get("SourceKeyId") is not None:
            named = self.key_or_404(need_str(req, "SourceKeyId"))
        src, plain = unseal(self.state, blob, src_ctx)
        if named is not None and named is not src:
            raise AwsError("IncorrectKeyException", "The key ID in the request does not "
                           "identify a CMK that can perform this operation.")
        return ({"CiphertextBlob": b64(seal(dest, plain, dst_ctx)), "SourceKeyId": src.arn,
                 "KeyId": dest.arn, "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                 "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT"},
                f"key={src.alias}->{dest.alias}")


# ---- KMS request bodies ---------------------------------------------------------------------------


def b64(data):
    return base64.b64encode(data).decode("ascii")


def parse_kms_body(body):
    try:
        req = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise AwsError("SerializationException", "Start of structure or map found where not "
                       "expected.") from None
    if not isinstance(req, dict):
        raise AwsError("SerializationException", "Start of structure or map found where not "
                       "expected.")
    return req


def lower_first(name):
    return name[0].lower() + name[1:]


def need_str(req, name):
    v = req.get(name)
    if v is None:
        raise AwsError("ValidationException", f"1 validation error detected: Value null at "
                       f"'{lower_first(name)}' failed to satisfy constraint: Member must not be "
                       "null")
    if not isinstance(v, str):
        raise AwsError("SerializationException", f"{name} must be a string")
    if not 1 <= len(v) <= 2048:
        raise AwsError("ValidationException", f"1 validation error detected: Value at "
                       f"'{lower_first(name)}' failed to satisfy constraint: Member must have "
                       "length between 1 and 2048")
    return v


def need_blob(req, name):
    v = req.get(name)
    if v is None:
        raise AwsError("ValidationException", f"1 validation error detected: Value null at "
                       f"'{lower_first(name)}' failed to satisfy constraint: Member must not be "
                       "null")
    if not isinstance(v, str):
        raise AwsError("SerializationException", f"{name} must be a base64 string")
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raise AwsError("SerializationException", f"{name} is not valid base64") from None


def context_of(req, name):
    v = req.get(name)
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
        raise AwsError("SerializationException", f"{name} must be a map of strings")
    return v


# ---- main ----------------------------------------------------------------------------------------


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def parse_args(argv):
    p = argparse.ArgumentParser(description="A local KMS + STS + IMDSv2 stand-in for tests.")
    p.add_argument("--port-file", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--access-key", required=True)
    p.add_argument("--secret-key", required=True)
    p.add_argument("--keys", required=True, help="comma-separated KMS key aliases")
    p.add_argument("--role-arn", required=True)
    p.add_argument("--web-identity-token", required=True)
    p.add_argument("--imds-role", default="adi-vault-role")
    p.add_argument("--log")
    p.add_argument("--exit-when-gone", metavar="PATH",
                   help="exit (as on SIGTERM) once PATH no longer exists: a test folder removed "
                   "without stopping this server does not leave it running")
    a = p.parse_args(argv)
    a.keys = [k.strip() for k in a.keys.split(",") if k.strip()]
    if not a.keys:
        p.error("--keys names no key")
    for k in a.keys:
        if not k.startswith("alias/"):
            p.error(f"--keys: {k!r} is not an alias (alias/<name>)")
    if not a.secret_key or not a.access_key or not a.web_identity_token:
        p.error("--access-key, --secret-key and --web-identity-token must not be empty")
    return a


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    handler = (logging.FileHandler(args.log, encoding="utf-8") if args.log
               else logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter("%(asctime)s fake_aws %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)

    server = Server((args.host, args.port), Handler)
    server.state = State(args)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="serve", daemon=True)
    thread.start()

    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    tmp = f"{args.port_file}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.port_file)
    log.info("listening on %s:%d region=%s keys=%s role=%s imds_role=%s", args.host, port,
             args.region, ",".join(args.keys), args.role_arn, args.imds_role)

    while not stop.wait(1.0):
        if args.exit_when_gone and not os.path.exists(args.exit_when_gone):
            log.info("%s is gone: stopping", args.exit_when_gone)
            break
    server.shutdown()
    server.server_close()
    thread.join()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
