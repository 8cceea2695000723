#!/usr/bin/env python3
"""A real SMTP server for grantflow's tests (aiosmtpd), on loopback.

Every accepted message is saved in the spool folder as NNNNNN.eml (the raw DATA bytes) with
NNNNNN.json beside it (envelope sender, recipients, AUTH login). The .json is written first
and the .eml is renamed into place last, so a reader that sees an .eml sees both, complete.
Numbering continues after a restart on the same spool, so messages stay in arrival order.

Failures are injected through a control file (JSON) that only the test harness writes,
atomically, and that this server re-reads at every DATA command:

    {"generation": 3, "mode": "accept"}
    {"generation": 4, "mode": "fail_next", "count": 2, "code": 451, "text": "Try later"}
    {"generation": 5, "mode": "always_fail", "code": 550, "text": "No such user"}
    {"generation": 6, "mode": "stall"}     (read the message, never answer: client timeouts)
    {"generation": 7, "mode": "accept", "max_per_connection": 2}
                                           (close each connection after 2 messages, as
                                           relays with a per-connection limit do)

Connections are numbered from 1 in order of arrival; each message's .json names the one
that carried it ("connection"), so that tests can count connections per batch.

A new generation restarts the fail_next count. The server exits when its standard input is
closed, so it never outlives the test process that started it, even one killed outright.

Usage: smtp_server.py --port PORT --spool DIR --control FILE
                      [--auth-user U --auth-password P]
                      [--tls-cert PEM --tls-key PEM --tls-mode starttls|implicit]
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import threading

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class SpoolHandler:
    def __init__(self, spool, control):
        self.spool = spool
        self.control = control
        self.seen_generation = None
        self.failures_left = 0
        self.connections = 0
        self.sequence = max(
            (int(name[:-4]) for name in os.listdir(spool) if name.endswith(".eml") and name[:-4].isdigit()),
            default=0,
        )

    def read_control(self):
        try:
            with open(self.control, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return {"generation": 0, "mode": "accept"}

    def injected_failure(self):
        control = self.read_control()
        if control.get("generation") != self.seen_generation:
            self.seen_generation = control.get("generation")
            self.failures_left = int(control.get("count", 0))
        mode = control.get("mode", "accept")
        reply = f'{int(control.get("code", 451))} {control.get("text", "Injected failure")}'
        if mode == "always_fail":
            return reply
        if mode == "fail_next" and self.failures_left > 0:
            self.failures_left -= 1
            return reply
        return None

    async def handle_DATA(self, server, session, envelope):
        if self.read_control().get("mode") == "stall":
            await asyncio.sleep(3600)
        failure = self.injected_failure()
        if failure is not None:
            return failure
        self.sequence += 1
        stem = os.path.join(self.spool, f"{self.sequence:06d}")
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "auth_login": login.decode("utf-8", "replace") if login is not None else None,
            "connection": server.gf_connection,
        }
        write_atomically(stem + ".json", json.dumps(meta).encode("utf-8"))
        write_atomically(stem + ".eml", envelope.original_content)
        # The harness waits on this line (not on a timer) to know a message is stored.
        print(f"received {os.path.basename(stem)}", flush=True)
        server.gf_messages += 1
        limit = self.read_control().get("max_per_connection")
        if limit and server.gf_messages >= int(limit):
            # After the 250 below is written: closing flushes it first.
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 Message accepted for delivery"


def write_atomically(path, data):
    temporary = path + ".tmp"
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def exit_when_stdin_closes():
    # The harness holds our stdin open; EOF means it is gone.
    sys.stdin.buffer.read()
    os._exit(0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spool", required=True)
    parser.add_argument("--control", required=True)
    parser.add_argument("--auth-user")
    parser.add_argument("--auth-password")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--tls-mode", choices=["starttls", "implicit"])
    args = parser.parse_args()

    os.makedirs(args.spool, exist_ok=True)
    handler = SpoolHandler(args.spool, args.control)

    tls_context = None
    if args.tls_mode:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    authenticator = None
    if args.auth_user is not None:
        expected = (args.auth_user.encode(), (args.auth_password or "").encode())

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == expected
            # handled=False: aiosmtpd itself answers 235 or 535.
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def make_session():
        handler.connections += 1
        session = SMTP(
            handler,
            hostname="grantflow-test-smtp",
            enable_SMTPUTF8=True,
            tls_context=tls_context if args.tls_mode == "starttls" else None,
            require_starttls=args.tls_mode == "starttls",
            authenticator=authenticator,
            auth_required=authenticator is not None,
            # Loopback only: plain-text AUTH is fine without TLS here.
            auth_require_tls=False,
        )
        session.gf_connection = handler.connections
        session.gf_messages = 0
        return session

    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        server = loop.run_until_complete(
            loop.create_server(
                make_session,
                host="127.0.0.1",
                port=args.port,
                ssl=tls_context if args.tls_mode == "implicit" else None,
                reuse_address=True,
            )
        )
    except OSError as error:
        print(f"cannot listen on 127.0.0.1:{args.port}: {error}", flush=True)
        # os._exit: a normal exit would wait on the thread blocked reading stdin.
        os._exit(2)
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
