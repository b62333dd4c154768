"""The dispatcher as the edge, against real processes: a phone whose Contact is a private
address it cannot be reached at (behind NAT) registers through the dispatcher, and calls to it
(SIPp) arrive at its real source address, in-dialog requests too; SIPp in outbound-proxy
mode (``-rsa`` to the dispatcher, the Request-URI naming the domain) registers and calls."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipha.common.process import free_port
from sipha.sip import Request, Response, build_response, parse_message
from sipha.sip.auth import build_credentials, parse_challenge
from tests.server.helpers import add_user
from tests.sipp import run_uac, uas

from .cluster import Node, spawn_server, start_dispatcher, wait_server

pytestmark = pytest.mark.timeout(90)

SCENARIOS = Path(__file__).parent / "scenarios"
DOMAIN = "sipha.local"
PRIVATE = "10.255.0.1:5060"  # the phone's Contact: nobody outside its NAT reaches it
SDP = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" \
      "m=audio 40000 RTP/AVP 0\r\n"


@contextlib.contextmanager
def edge_cluster(tmp: Path) -> Iterator[Node]:
    """Two servers (a shared store with users natted and callee; loopback trusted, so
    SIPp needs no credentials to call) behind one dispatcher on UDP."""
    store = tmp / "cluster.db"
    for user in ("natted", "callee"):
        add_user(f"sqlite:{store}", user, f"{user}-pw")
    servers = [spawn_server(tmp, i, ("--trusted", "127.0.0.0/8")) for i in range(2)]
    dispatcher: Node | None = None
    try:
        for node in servers:
            wait_server(node)
        dispatcher = start_dispatcher(tmp, [s.uri for s in servers])
        yield dispatcher
    finally:
        if dispatcher is not None:
            dispatcher.kill()
        for node in servers:
            node.kill()


class NattedPhone:
    """A raw UDP phone that registers a private Contact and answers what reaches its socket."""

    def __init__(self, dispatcher: tuple[str, int]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.dispatcher = dispatcher
        self.received: list[Request] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _register(self, cseq: int, auth: str = "") -> Response:
        self.sock.sendto((
            f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {PRIVATE};branch=z9hG4bKnat{cseq};rport\r\n"
            f"Route: <sip:{self.dispatcher[0]}:{self.dispatcher[1]};lr>\r\n"
            f"From: <sip:natted@{DOMAIN}>;tag=nat1\r\nTo: <sip:natted@{DOMAIN}>\r\n"
            f"Call-ID: natreg@10.255.0.1\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:natted@{PRIVATE}>\r\nExpires: 300\r\n{auth}"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode(), self.dispatcher)
        while True:
            msg = parse_message(self.sock.recvfrom(65535)[0])
            if isinstance(msg, Response) and msg.status >= 200:
                return msg

    def register(self) -> Response:
        challenge = self._register(1)
        assert challenge.status == 401, challenge
        creds = build_credentials(
            parse_challenge(challenge.get("www-authenticate") or ""), method="REGISTER",
            uri=f"sip:{DOMAIN}", username="natted", password="natted-pw", cnonce="c1",
        )
        return self._register(2, f"Authorization: {creds}\r\n")

    def answer_calls(self) -> None:
        self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except OSError:
                continue
            msg = parse_message(data)
            if not isinstance(msg, Request):
                continue
            self.received.append(msg)
            if msg.method == "INVITE":
                ok = build_response(msg, 200, to_tag="nat-callee", copy_record_route=True,
                                    headers=[("Contact", f"<sip:natted@{PRIVATE}>"),
                                             ("Content-Type", "application/sdp")],
                                    body=SDP.encode())
                self.sock.sendto(bytes(ok), source)
            elif msg.method != "ACK":
                self.sock.sendto(bytes(build_response(msg, 200)), source)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sock.close()


def _sipp_outbound(target: str, scenario: str, *extra: str, calls: int = 1) -> None:
    # SIPp resolves its target host, so the target is a placeholder address and -rsa sends
    # every message to the dispatcher, as a phone's outbound proxy setting does.
    result = run_uac(
        "127.0.0.1:5060", rate=10, calls=calls, timeout=30,
        scenario=("-sf", str(SCENARIOS / scenario)),
        extra=("-rsa", target, "-set", "dom", DOMAIN, *extra),
    )
    assert (result.successful, result.failed) == (calls, 0), result.stdout


def test_calls_reach_a_phone_behind_nat_at_its_real_address(tmp_path: Path) -> None:
    with edge_cluster(tmp_path) as dispatcher:
        phone = NattedPhone(("127.0.0.1", dispatcher.sip_port))
        try:
            ok = phone.register()
            assert ok.status == 200, ok
            phone.answer_calls()
            _sipp_outbound(f"127.0.0.1:{dispatcher.sip_port}", "outbound_uac.xml",
                           "-s", "natted", calls=3)
        finally:
            phone.close()
        methods = [m.method for m in phone.received]
        assert methods.count("INVITE") == 3
        assert methods.count("ACK") == 3
        assert methods.count("BYE") == 3
        # Addressed to the private Contact, delivered to the phone's real socket, from the
        # service address.
        assert all(m.ruri == f"sip:natted@{PRIVATE}" for m in phone.received)
        status = dispatcher.get("/status", "t0ken")
        assert status["stats"]["paths_added"] >= 2
        assert status["stats"]["flow_failed"] == 0


def test_sipp_through_the_outbound_proxy_registers_and_is_called(tmp_path: Path) -> None:
    with edge_cluster(tmp_path) as dispatcher:
        target = f"127.0.0.1:{dispatcher.sip_port}"
        # SIPp registers from the port its uas then listens on: the flow the registration
        # came over is the address the uas answers at. (SIPp computes the digest uri from
        # its target, hence -auth_uri.)
        port = free_port()
        _sipp_outbound(target, "outbound_register.xml", "-s", "callee", "-au", "callee",
                       "-ap", "callee-pw", "-auth_uri", DOMAIN, "-p", str(port))
        with uas(port=port, scenario=("-sf", str(SCENARIOS / "uas_record_route.xml"))):
            _sipp_outbound(target, "outbound_uac.xml", "-s", "callee", calls=5)
        status = dispatcher.get("/status", "t0ken")
        assert status["stats"]["foreign_responses"] == 0
