# SPDX-License-Identifier: MIT
"""A real SMTP server on loopback for the tests (Debian's python3-aiosmtpd): every mail it accepts
is stored as two files in --dir, written atomically (a temporary name, then rename), so a reader
never sees half a mail:

    <n>.eml   the message exactly as received (RFC 5322 headers and body, CRLF line ends)
    <n>.json  {"mail_from": ..., "rcpt_tos": [...], "auth_user": ... or null, "peer": ...}

It listens on --host (127.0.0.1) and --port (0 = a free port). Once it listens it writes the port
to --port-file (atomically), which is how a caller waits for it. With --auth-env NAME it requires
SMTP AUTH (PLAIN or LOGIN, allowed without TLS on loopback) with the "user:password" held in the
environment variable NAME, and refuses every other login. SIGTERM or SIGINT stops it (exit 0).

    /usr/bin/python3 mail_sink.py --dir DIR --port-file FILE [--host H] [--port P] [--auth-env V]
"""
import argparse
import asyncio
import itertools
import json
import logging
import os
import signal
import sys
import warnings

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def write_atomic(path, data):
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


class Store:
    """aiosmtpd handler: stores each message under the next free number."""

    def __init__(self, directory):
        self.directory = directory
        existing = [int(n.split(".")[0]) for n in os.listdir(directory)
                    if n.endswith(".json") and n.split(".")[0].isdigit()]
        self.seq = itertools.count(max(existing, default=0) + 1)

    async def handle_DATA(self, server, session, envelope):
        n = next(self.seq)
        base = os.path.join(self.directory, f"{n:06d}")
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                "auth_user": session.auth_data.login.decode("utf-8", "replace")
                if isinstance(session.auth_data, LoginPassword) else None,
                "peer": list(session.peer) if session.peer else None}
        write_atomic(base + ".eml", content)
        write_atomic(base + ".json", json.dumps(meta).encode("utf-8"))
        return "250 OK stored"


class Authenticator:
    """Accepts exactly one user:password."""

    def __init__(self, user, password):
        self.user = user.encode("utf-8")
        self.password = password.encode("utf-8")

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == self.user
              and auth_data.password == self.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


async def main():
    ap = argparse.ArgumentParser(description="SMTP sink storing mails as files")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--auth-env", default=None)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    handler = Store(args.dir)
    kwargs = {"hostname": "mail-sink.test", "enable_SMTPUTF8": True}
    if args.auth_env:
        # AUTH without TLS is what a loopback test wants: silence aiosmtpd's warnings about it.
        warnings.simplefilter("ignore")
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        cred = os.environ.get(args.auth_env, "")
        user, sep, password = cred.partition(":")
        if not sep or not user:
            sys.exit(f"mail_sink: ${args.auth_env} must hold user:password")
        kwargs.update(authenticator=Authenticator(user, password), auth_required=True,
                      auth_require_tls=False)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler, **kwargs), args.host, args.port)
    port = server.sockets[0].getsockname()[1]
    write_atomic(args.port_file, f"{port}\n".encode())
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"mail_sink: listening on {args.host}:{port}, storing in {args.dir}", flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
