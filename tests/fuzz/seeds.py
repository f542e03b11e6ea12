#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# Writes the hand-made seed inputs of tests/fuzz/corpus/<target>/ (seed-*; files a fuzzing run
# found and that were kept after minimisation have other names and are left alone). The message
# seeds are built from proto/*.def: one valid instance of every message (first byte = its index in
# messages.def order, as fuzz_msg.c reads it), plus envelopes and replies around real operations.
#   python3 tests/fuzz/seeds.py
import json
import os
import re
import sys

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROTO = os.path.join(ROOT, "proto")
UUID = "0b7c9a52-4f1e-4c55-9a0e-3f3e7c1d2a10"
UUID2 = "9f3e2d1c-0b0a-4a98-8776-655443322110"


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def dict_entry(b):
    if isinstance(b, str):
        b = b.encode()
    return '"' + "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else f"\\x{c:02x}" for c in b) + '"'


def write_dict(target, words):
    d = os.path.join(HERE, "dict")
    os.makedirs(d, exist_ok=True)
    seen = []
    for w in words:
        e = dict_entry(w)
        if e not in seen:
            seen.append(e)
    with open(os.path.join(d, target + ".dict"), "w") as f:
        f.write(f"# libFuzzer dictionary of fuzz_{target}, written by tests/fuzz/seeds.py\n")
        f.write("".join(e + "\n" for e in seen))


def clear(target):
    d = os.path.join(HERE, "corpus", target)
    if os.path.isdir(d):
        for f in os.listdir(d):
            if f.startswith("seed-"):
                os.remove(os.path.join(d, f))


# ---- proto/*.def ----------------------------------------------------------------------------


def load_enums():
    enums = {}
    for m in re.finditer(r"ADI_ENUM\((\w+),([^)]*)\)", open(os.path.join(PROTO, "enums.def")).read()):
        enums["adi_enum_" + m.group(1)] = re.findall(r'"([^"]*)"', m.group(2))
    return enums


def load_messages():
    """[(name, [(macro, args...)])] in messages.def order."""
    order = re.findall(r'#include "(\w+\.def)"', open(os.path.join(PROTO, "messages.def")).read())
    msgs = []
    for f in order:
        text = re.sub(r"/\*.*?\*/", "", open(os.path.join(PROTO, f)).read(), flags=re.S)
        for m in re.finditer(r"(ADI_MSG_BEGIN|ADI_F_\w+)\(([^()]*)\)", text):
            args = [a.strip() for a in m.group(2).split(",")]
            if m.group(1) == "ADI_MSG_BEGIN":
                msgs.append((args[0], []))
            else:
                msgs[-1][1].append((m.group(1), args))
    return msgs


def num(s):
    s = s.replace("INT64_MAX", str(2**63 - 1)).replace("INT64_MIN", str(-(2**63)))
    return int(eval(s, {}))  # the .def files hold integer literals and simple products


def sample(msgs, enums, name, depth=0):
    fields = dict(msgs)[name]
    out = {}
    for macro, a in fields:
        field = a[1]
        if macro == "ADI_F_STR":
            lo, hi, fmt = num(a[2]), num(a[3]), a[4]
            if fmt == "ADI_FMT_UUID":
                v = UUID
            elif fmt == "ADI_FMT_EMAIL":
                v = "user@example.com"
            elif fmt == "ADI_FMT_TIME":
                v = "2024-03-10T02:30:00-05:00"
            else:
                v = "x" * max(lo, min(hi, 8))
            out[field] = v
        elif macro == "ADI_F_ENUM":
            out[field] = enums[a[2]][0]
        elif macro == "ADI_F_INT":
            lo, hi = num(a[2]), num(a[3])
            out[field] = max(lo, min(hi, 1))
        elif macro == "ADI_F_BOOL":
            out[field] = True
        elif macro == "ADI_F_MSG":
            out[field] = sample(msgs, enums, a[2], depth + 1) if depth < 4 else None
        elif macro == "ADI_F_LIST":
            out[field] = [sample(msgs, enums, a[2], depth + 1)] if depth < 4 else []
        elif macro == "ADI_F_STRLIST":
            out[field] = ["ADMIN"]
        elif macro == "ADI_F_RAW":
            out[field] = {"k": "v"}
        if "ADI_ROOT" in a[-1]:
            return out[field]
    return out


def main():
    enums = load_enums()
    msgs = load_messages()
    names = [m[0] for m in msgs]
    ops = re.findall(
        r"ADI_OP\(\s*(\w+),\s*\"([^\"]+)\",\s*\"([^\"]+)\",\s*(\w+),\s*(\w+)",
        open(os.path.join(PROTO, "ops.def")).read(),
    )
    for t in ("msg", "envelope", "json", "router", "jwt", "sigv4", "cron", "kms_creds"):
        clear(t)

    # msg: one valid instance of every message, plus a few broken variants of some.
    for i, name in enumerate(names):
        body = msgpack.packb(sample(msgs, enums, name))
        write("msg", f"{i:02d}-{name}", bytes([i]) + body)
    write("msg", "trunc", bytes([names.index("adi_envelope")]) + b"\x8a\xa1v")
    write("msg", "deep", bytes([names.index("adi_reply")]) + b"\x91" * 40 + b"\xc0")

    # envelope: requests for a spread of operations, and replies (success and error).
    env = sample(msgs, enums, "adi_envelope")
    for n, (cname, wire, svc, req, rep) in enumerate(ops[:: max(1, len(ops) // 12)]):
        e = dict(env, op=wire, body=sample(msgs, enums, req), params={"id": UUID2})
        write("envelope", f"req-{wire}", msgpack.packb(e))
    write("envelope", "reply-ok", msgpack.packb({"v": 1, "id": "r1", "status": 200, "body": {"a": [1, 2.5, None, "\u00e9"]}}))
    write("envelope", "reply-err", msgpack.packb({"v": 1, "id": "r1", "status": 400, "body": None,
        "error": {"code": "invalid", "message": "Bad.", "fields": [{"field": "email", "message": "Enter a valid email address."}]}}))
    write("envelope", "reply-401", msgpack.packb({"v": 1, "id": "r1", "status": 401,
        "error": {"code": "token_not_valid", "message": "Token is invalid or expired"}}))
    write("envelope", "reply-503", msgpack.packb({"v": 1, "id": "r1", "status": 503,
        "error": {"code": "unavailable", "message": "later"}}))

    # json: request bodies as clients send them, and the hostile kinds API.md names.
    for n, body in enumerate([
        {"email": "a@b.co", "password": "correct horse"},
        {"name": "Acme", "admin_email": "x@y.z", "admin_password": "p" * 12, "admin_first_name": "\u00c9"},
        [1, -1, 0, 9223372036854775807, -9223372036854775808, 1.5, -0.0, 1e308, 5e-324, 1e16, 123456789.125],
        {"a": {"b": {"c": [True, False, None, "", "\u0000", "\ud83d\ude00"]}}},
    ]):
        write("json", f"body{n}", json.dumps(body))
    write("json", "dup", '{"a":1,"a":2}')
    write("json", "deep33", "[" * 33 + "]" * 33)
    write("json", "bigint", '{"n": 9223372036854775808}')
    write("json", "badutf8", b'{"s":"\xc3\x28"}')
    write("json", "escapes", r'"\u00e9\n\t\"\\\/\ud800"')
    write("json", "scalar", "  3.0e+2 ")

    # router: request lines for a spread of the real routes (routes.def), then odd ones.
    text = open(os.path.join(ROOT, "services", "gateway", "routes.def")).read()
    routes = re.findall(r'ROUTE\((\w+), "([^"]+)"', re.sub(r"/\*.*?\*/", "", text, flags=re.S))
    for n, (method, path) in enumerate(routes[:: max(1, len(routes) // 20)]):
        path = re.sub(r"\{\w+\}", UUID, path)
        write("router", f"route{n:02d}", f"{method} {path}?page=2&page_size=50")
    for n, line in enumerate([
        "DELETE /api/roles/abc%20d/?x=%zz&y=a+b&=skip&flag",
        "HEAD /api/timezone",
        "OPTIONS /api/health/version/",
        "BREW /api/health/",
        "GET /api//users/",
        "GET /api/users/%E2%82%AC/?q=%C3%28",
    ]):
        write("router", f"line{n}", line)

    # jwt: mode byte 0x00/0x02 = Authorization header, 0x01/0x03 = header\npayload signed here.
    claims = {"token_type": "access", "exp": 1700003600, "iat": 1699999990, "jti": "0" * 32,
              "user_id": UUID, "tenant_id": UUID2, "roles": ["ADMIN", "VIEWER"], "ver": 3,
              "is_superuser": True, "email": "a@b.co"}
    hdr = '{"alg":"HS256","typ":"JWT"}'
    write("jwt", "signed-access", b"\x01" + f"{hdr}\n{json.dumps(claims)}".encode())
    write("jwt", "signed-refresh", b"\x03" + f"{hdr}\n{json.dumps(dict(claims, token_type='refresh', tenant_id=None))}".encode())
    write("jwt", "signed-nbf", b"\x01" + f"{hdr}\n{json.dumps(dict(claims, nbf=1800000000))}".encode())
    write("jwt", "alg-none", b"\x01" + b'{"alg":"none"}\n{}')
    write("jwt", "crit", b"\x01" + b'{"alg":"HS256","crit":["x"]}\n{}')
    write("jwt", "bearer", b"\x00Bearer eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.AAAA")
    write("jwt", "bearer-bad", b"\x00Bearer a b")
    write("jwt", "basic", b"\x00Basic dXNlcjpwYXNz")

    # sigv4: the aws-c-auth suite's requests (beside the repo), and a strict request with a body.
    suite = os.path.join(ROOT, "..", "shared", "testdata", "sigv4")
    if os.path.isdir(suite):
        for case in sorted(os.listdir(suite))[::3]:
            p = os.path.join(suite, case, "request.txt")
            if os.path.isfile(p):
                write("sigv4", case, b"\x0d" + open(p, "rb").read())
    write("sigv4", "post-body", b"\x14POST /?Action=x&b=%20 HTTP/1.1\r\nHost: kms.us-east-1.amazonaws.com\r\n"
          b"X-Amz-Target: TrentService.Decrypt\r\nContent-Length: 5\r\n\r\nhello")
    write("sigv4", "fold", b"\x00GET /a/../b/./c HTTP/1.0\nHost: h\nX-A: one\n  two\n\n")

    # cron: the forms adi/cron.h documents.
    for n, e in enumerate(["*/15 * * * *", "0 9 * * MON-FRI", "30 2 * * *", "0 0 29 2 *",
                           "5,10-20/5 0-23/6 1,15 JAN,jul sun", "@hourly", "@yearly",
                           "0 1 31 4,6 1", "59 23 31 DEC 7", "  1 2 3 4 5  "]):
        write("cron", f"expr{n}", e)

    # kms_creds: mode 0 STS XML, 1 IMDS JSON, 2 credentials file, 3 a time.
    ns = "https://sts.amazonaws.com/doc/2011-06-15/"
    write("kms_creds", "sts-ok", b"\x00" + f"""<AssumeRoleWithWebIdentityResponse xmlns="{ns}">
<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId>
<SecretAccessKey>c2VjcmV0</SecretAccessKey><SessionToken>tok+/=</SessionToken>
<Expiration>2026-11-27T21:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>""".encode())
    write("kms_creds", "sts-err", b"\x00" + f"""<ErrorResponse xmlns="{ns}"><Error><Type>Sender</Type>
<Code>InvalidIdentityToken</Code><Message>no</Message></Error></ErrorResponse>""".encode())
    write("kms_creds", "imds", b"\x01" + json.dumps({"Code": "Success", "Type": "AWS-HMAC",
          "AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "s3cr3t", "Token": "t",
          "Expiration": "2026-11-27T21:00:00.123+00:00", "LastUpdated": "2026-11-27T15:00:00Z"}).encode())
    write("kms_creds", "ini", b"\x02[default]\naws_access_key_id = AKIDEXAMPLE\n"
          b"aws_secret_access_key=secret\naws_session_token=tok\n\n[prod]\naws_access_key_id=X\n")
    write("kms_creds", "ini-prod", b"\x06; comment\n[prod]\naws_access_key_id=AKID2\naws_secret_access_key = s # not a comment\n")
    write("kms_creds", "time", b"\x032026-11-27T21:00:00.5Z")

    # Dictionaries: the wire names and values the parsers look for.
    fields = sorted({a[1] for _, fs in msgs for _, a in fs})
    values = sorted({v for vs in enums.values() for v in vs}) + [w for _, w, _, _, _ in ops]
    mp_words = [msgpack.packb(w) for w in fields + values] + [
        b"\xc0", b"\xc2", b"\xc3", b"\xcb", b"\xd3", b"\xcf", b"\xdc", b"\xde", b"\xd9", b"\xc4", b"\xd4"]
    write_dict("msg", mp_words + [msgpack.packb(UUID), msgpack.packb("2024-01-01T00:00:00Z")])
    write_dict("envelope", mp_words)
    write_dict("json", ['{"', '":', '"', "[", "]", "{}", "true", "false", "null", "\\u", "\\ud83d",
                        "1e", "-0.0", "9223372036854775807", "E+", ".5"])
    segs = sorted({s for _, p in routes for s in p.split("/") if s})
    write_dict("router", [m + " " for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")]
               + ["/" + s for s in segs if not s.startswith("{")] + ["?", "&", "=", "%2F", "%C3%A9", "%00", "+", "//"])
    write_dict("jwt", ["Bearer ", '"alg"', '"HS256"', '"none"', '"typ"', '"crit"', '"token_type"',
                       '"access"', '"refresh"', '"exp"', '"iat"', '"nbf"', '"jti"', '"user_id"',
                       '"tenant_id"', '"roles"', '"ver"', '"is_superuser"', '"email"', "1700000000",
                       '"' + UUID + '"', '"' + "0" * 32 + '"'])
    write_dict("sigv4", ["HTTP/1.1", "HTTP/1.0", "\r\n", "Host:", "Content-Length:", "Transfer-Encoding:",
                         "X-Amz-Date:", "X-Amz-Security-Token:", "Authorization:", " GET ", "POST ", "%2F", "/../", "/./"])
    write_dict("cron", ["*/", "-", ",", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
                        "@hourly", "JAN", "FEB", "DEC", "SUN", "SAT", "MON", "59", "23", "31", "12", "7"])
    write_dict("kms_creds", ["<AccessKeyId>", "</AccessKeyId>", "<SecretAccessKey>", "<SessionToken>", "<Expiration>",
                             "<Credentials>", "<ErrorResponse>", "<Error>", "<Code>", "<!DOCTYPE", "<!ENTITY", "&",
                             '"Code"', '"Success"', '"AccessKeyId"', '"SecretAccessKey"', '"Token"', '"Expiration"',
                             "[default]", "[prod]", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                             "T00:00:00", "Z", "+00:00", ".123"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
