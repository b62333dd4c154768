"""TCP across a takeover: a caller's connection to the old active dies with it; the call it
set up still ends cleanly, because the server's BYE (the callee hangs up) reaches the caller
over a new connection the new active opens to the caller's Contact; and the caller's new
connection to the service address is accepted at once for the next call.

The caller is a few lines of real TCP here, not SIPp: SIPp 3.6's uac aborts the whole run when
its TCP connection breaks, which is SIPp's limit, not the cluster's.
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from sipha.sip import Request, Response, StreamParser, build_response, parse_message

from .pair import Pair, pair

SERVER_CONFIG = """
[[answer]]
pattern = "short"
action = "answer"
max_hold = 4.0

[[answer]]
pattern = "service"
"""


class Caller:
    """One UA over TCP: calls from a connection to the service address and listens on its
    Contact address for requests the cluster sends it."""

    def __init__(self, p: Pair) -> None:
        self.p = p
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10)
        self.contact_port = self.listener.getsockname()[1]
        self.conn = self._connect()
        self.n = 0

    def _connect(self) -> socket.socket:
        s = socket.create_connection((self.p.vip, self.p.sip_port), timeout=5)
        s.settimeout(5)
        return s

    def reconnect(self) -> None:
        self.conn.close()
        self.conn = self._connect()

    def send(self, text: str) -> None:
        self.conn.sendall(text.encode())

    def invite(self, user: str) -> tuple[Response, str]:
        """Send an INVITE to ``user``; return the 200 and its To header."""
        self.n += 1
        host, port = self.conn.getsockname()[:2]
        self.call_id = f"tcp-{self.n}-{time.monotonic_ns()}@127.0.0.1"
        self.send(
            f"INVITE sip:{user}@{self.p.vip}:{self.p.sip_port};transport=tcp SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP {host}:{port};branch=z9hG4bK-tcp-{self.n}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:caller@127.0.0.1>;tag=c{self.n}\r\n"
            f"To: <sip:{user}@{self.p.vip}>\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:caller@127.0.0.1:{self.contact_port};transport=tcp>\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        framer = StreamParser()
        while True:
            msg = _next(framer, self.conn)
            assert isinstance(msg, Response)
            if msg.status >= 200:
                assert msg.status == 200, msg.status
                to = msg.get("to")
                assert to is not None
                route = msg.get_all("record-route")
                self.send(
                    f"ACK sip:short@127.0.0.1 SIP/2.0\r\n"
                    f"Via: SIP/2.0/TCP {host}:{port};branch=z9hG4bK-tcp-ack-{self.n}\r\n"
                    "Max-Forwards: 70\r\n"
                    f"From: <sip:caller@127.0.0.1>;tag=c{self.n}\r\n"
                    f"To: {to}\r\nCall-ID: {self.call_id}\r\nCSeq: 1 ACK\r\n"
                    + "".join(f"Route: {r}\r\n" for r in route)
                    + "Content-Length: 0\r\n\r\n"
                )
                return msg, to

    def answer_bye(self) -> Request:
        """Accept the connection the cluster opens to our Contact, read its BYE, answer 200."""
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(10)
            bye = _next(StreamParser(), conn)
            assert isinstance(bye, Request)
            conn.sendall(bytes(build_response(bye, 200)))
            time.sleep(0.3)  # let the 200 leave before the connection closes
        return bye

    def close(self) -> None:
        self.conn.close()
        self.listener.close()


def _next(framer: StreamParser, conn: socket.socket) -> Request | Response:
    while True:
        msg = framer.next_message()
        if msg is not None:
            return msg
        data = conn.recv(65535)
        assert data, "connection closed"
        framer.feed(data)


def _active_calls(p: Pair) -> int:
    return sum(int(s.get("/status")["active_calls"]) for s in p.servers)


def test_tcp_call_set_up_before_the_switch_ends_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(SERVER_CONFIG)
    with pair(tmp_path, n_servers=2, server_extra=("--config", str(config))) as p:
        caller = Caller(p)
        try:
            ok, _ = caller.invite("short")
            assert parse_message(bytes(ok)).get("record-route")
            time.sleep(0.3)  # the ACK is through; the active replicates the dialog
            assert _active_calls(p) == 1
            p.a.signal(signal.SIGKILL)
            # The old connection is gone with the old active.
            assert caller.conn.recv(65535) == b""
            # The callee hangs up at max_hold: its BYE reaches us through the new active,
            # over a connection it opens to our Contact address.
            bye = caller.answer_bye()
            assert bye.method == "BYE"
            assert bye.call_id == caller.call_id
            assert p.b.ha()["role"] == "active"
            deadline = time.monotonic() + 5
            while _active_calls(p) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _active_calls(p) == 0, "the server did not see the BYE answered"
            # A reconnection to the service address is served by the new active at once.
            caller.reconnect()
            caller.invite("service")
        finally:
            caller.close()
