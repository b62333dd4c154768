"""Issue 14's attacks sent to the service's front door: a real dispatcher in front of a real
server (``--auth-invite``, a user in the store, the dispatcher as its alias), with a recorder
standing for the outside host, the premium-rate gateway or the victim: it must receive nothing
it should not. (The same attacks straight at a server: tests/server/test_open_relay.py.)"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sipha.common.process import free_port, terminate
from sipha.sip import Response, parse_message
from tests.dispatcher.cluster import Node, start_dispatcher
from tests.messages import SDP
from tests.server.helpers import Server, add_user, server
from tests.server.outside import Recorder, final, raw_request, requests_in

TOKEN = "t0ken"
METHODS = ("INVITE", "BYE", "MESSAGE", "NOTIFY", "REFER", "OPTIONS", "SUBSCRIBE")


@dataclass
class Front:
    dispatcher: Node
    server: Server

    @property
    def port(self) -> int:
        return self.dispatcher.sip_port

    def stats(self) -> dict[str, int]:
        stats: dict[str, int] = self.dispatcher.get("/status", TOKEN)["stats"]
        return stats


@contextlib.contextmanager
def front(
    tmp_path: Path, *dispatcher_extra: str, auth: bool = True,
    transports: tuple[str, ...] = ("udp",),
) -> Iterator[Front]:
    dport = free_port()
    db = f"sqlite:{tmp_path / 'store.db'}"
    add_user(db, "alice", "alicepw")
    extra = ("--auth-invite",) if auth else ("--auth", "off")
    with server(tmp_path, store=db, extra=(*extra, "--alias", f"127.0.0.1:{dport}")) as srv:
        node = start_dispatcher(tmp_path, [f"sip:127.0.0.1:{srv.port}"], *dispatcher_extra,
                                token=TOKEN, sip_port=dport, transports=transports)
        try:
            yield Front(node, srv)
        finally:
            terminate(node.proc, timeout=3)
        assert "Traceback" not in node.log.read_text()


@pytest.fixture
def attacker() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


def _send(sock: socket.socket, port: int, text: str) -> None:
    sock.sendto(text.encode(), ("127.0.0.1", port))


def test_no_open_relay_through_the_dispatcher(tmp_path: Path, attacker: socket.socket) -> None:
    me = attacker.getsockname()[1]
    with front(tmp_path) as f, Recorder() as outside:
        far = f"127.0.0.1:{outside.port}"
        for i, method in enumerate(METHODS):
            # A pre-loaded Route to the outside host, also behind a Route naming the dispatcher.
            for n, route in enumerate((f"<sip:{far};lr>",
                                       f"<sip:127.0.0.1:{f.port};lr>, <sip:{far};lr>")):
                _send(attacker, f.port, raw_request(
                    method, "sip:+19005551234@premium.invalid", via_port=me,
                    call_id=f"pre{i}-{n}", from_uri=f"sip:mallory@127.0.0.1:{me}",
                    to="<sip:+19005551234@premium.invalid>", headers=[f"Route: {route}"],
                    body=SDP if method == "INVITE" else "",
                ))
                assert final(attacker).status == 403, (method, route)
            # A To tag and a Request-URI naming the outside host: no dialog of the cluster's.
            _send(attacker, f.port, raw_request(
                method, f"sip:+19005551234@{far}", via_port=me, call_id=f"dlg{i}",
                from_uri=f"sip:mallory@127.0.0.1:{me}", to=f"<sip:x@{far}>;tag=t1",
            ))
            assert final(attacker).status == 403, method
        assert outside.drain() == []


def test_a_route_naming_the_dispatcher_does_not_make_a_loop(
    tmp_path: Path, attacker: socket.socket
) -> None:
    """One datagram with a To tag and a Route naming the dispatcher bounced ~3,500 times in
    5 s between server and dispatcher before loop detection covered routed requests."""
    me = attacker.getsockname()[1]
    with front(tmp_path, "--probe", "off", auth=False) as f:
        before = f.stats()["requests"]
        _send(attacker, f.port, raw_request(
            "BYE", f"sip:bob@127.0.0.1:{f.port}", via_port=me, call_id="loop",
            from_uri=f"sip:m@127.0.0.1:{me}", to=f"<sip:bob@127.0.0.1:{f.port}>;tag=t1",
            headers=[f"Route: <sip:127.0.0.1:{f.port};lr>"],
        ))
        answer = final(attacker)
        assert answer.status >= 400
        time.sleep(1.0)
        # The request, at most a few hops of it, and the answer: never a ping-pong.
        assert f.stats()["requests"] - before <= 5


def test_forged_responses_are_dropped_and_counted_at_the_dispatcher(
    tmp_path: Path, attacker: socket.socket
) -> None:
    with front(tmp_path, "--probe", "off") as f, Recorder() as victim:
        # A 200 whose top Via claims to be the dispatcher's with a branch it never signed: a
        # stateless forward would send it on to the second Via, the victim.
        for n in range(5):
            _send(attacker, f.port, "\r\n".join([
                "SIP/2.0 200 OK",
                f"Via: SIP/2.0/UDP 127.0.0.1:{f.port};branch=z9hG4bKforged.{n}",
                f"Via: SIP/2.0/UDP 127.0.0.1:{victim.port};branch=z9hG4bKvictim",
                "From: <sip:a@x>;tag=1", "To: <sip:b@y>;tag=2", f"Call-ID: forged{n}",
                "CSeq: 1 INVITE", "Content-Length: 0",
            ]) + "\r\n\r\n")
        assert victim.drain() == []
        assert f.stats()["foreign_responses"] == 5


def test_an_unacked_invite_earns_its_spoofed_source_no_amplification(
    tmp_path: Path, attacker: socket.socket
) -> None:
    """INVITEs claiming the victim's address, never ACKed: the server resends its 200 (0.5 s,
    1.5 s, 3.5 s, ...), the dispatcher relays each copy once and then only the budget (here 3
    repeats, then 1 a second) to a host that never answered us."""
    cfg = tmp_path / "dispatcher.toml"
    cfg.write_text("reflection_rate = 1.0\nreflection_burst = 3.0\n")
    with Recorder() as victim, front(tmp_path, "--probe", "off", "--config", str(cfg),
                                     auth=False) as f:
        calls = 10
        for n in range(calls):
            _send(attacker, f.port, raw_request(
                "INVITE", f"sip:service@127.0.0.1:{f.port}", via_port=victim.port,
                call_id=f"amp{n}", from_uri="sip:victim@127.0.0.1",
                to=f"<sip:service@127.0.0.1:{f.port}>", body=SDP,
            ))
        time.sleep(4.0)  # the 200 is resent at 0.5, 1.5 and 3.5 s: 40 copies unbudgeted
        oks = [m for m in (parse_message(d) for d in victim.drain(quiet=0.2))
               if isinstance(m, Response) and m.status == 200]
        assert {m.call_id for m in oks} == {f"amp{n}" for n in range(calls)}
        assert len(oks) <= calls + 3 + 5  # first copies, the burst, 1/s for 4 s (+ slack)
        assert f.stats()["amplification_suppressed"] >= 15
        assert requests_in(victim.got) == []
