"""Servers given by name (issue 14): resolved through DNS (RFC 3263 SRV, then A) off the event
loop, re-resolved when the TTL runs out; a name that does not resolve, or a DNS server that
never answers, leaves that server unused and the caller a clean 503, never an exception;
``localhost`` needs no DNS. A DNS server in the test process serves the records."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipha.common.process import terminate
from sipha.dispatcher.destinations import Name, NameTable
from sipha.dispatcher.health import HealthSettings
from sipha.dispatcher.schedulers import Destination
from sipha.dispatcher.state import Server
from sipha.sip import Request, Response, build_response, parse_message
from sipha.transport import Peer
from tests.dispatcher.cluster import Node, start_dispatcher
from tests.dns_server import DnsServer
from tests.server.outside import final, raw_request


def _server(uid: int, uri: str) -> Server:
    return Server(uid, Destination(uri), uri, Peer("udp", "x", 5060), probing=False,
                  settings=HealthSettings())


def test_names_are_due_at_once_then_at_their_ttl_and_failures_back_off() -> None:
    assert Name.of(_server(1, "sip:127.0.0.1:5071")) is None
    assert Name.of(_server(1, "sip:localhost:5071")) is None
    assert Name.of(_server(1, "sip:a.test:5071")) == Name("a.test", 5071, None)
    assert Name.of(_server(1, "sip:a.test;transport=tcp")) == Name("a.test", None, "tcp")
    assert Name.of(_server(1, "sips:a.test")) == Name("a.test", None, "tls")
    t = NameTable(min_refresh=1.0, retry=2.0, max_retry=10.0)
    servers = [_server(1, "sip:a.test"), _server(2, "sip:127.0.0.1:5071")]
    t.sync(servers, now=0.0)
    assert len(t) == 1
    assert t.due(0.0) == [(1, Name("a.test", None, None))]
    assert t.due(0.0) == []  # one lookup at a time
    assert t.next_deadline() == float("inf")
    t.resolved(1, expires=60.0, now=0.5)
    assert t.next_deadline() == 60.0
    assert t.due(59.9) == []
    assert len(t.due(60.0)) == 1
    t.resolved(1, expires=60.0, now=60.1)  # an expired TTL: no busy loop
    assert t.next_deadline() == pytest.approx(61.1)
    assert len(t.due(61.1)) == 1
    assert [t.failed(1, 70.0) for _ in range(1)] == [1]
    assert t.next_deadline() == 72.0
    delays = []
    for n in range(6):
        now = t.next_deadline()
        t.due(now)
        t.failed(1, now)
        delays.append(t.next_deadline() - now)
        assert n < 6
    assert delays == [4.0, 8.0, 10.0, 10.0, 10.0, 10.0]
    servers[0].removed = True
    t.sync(servers, now=200.0)
    assert len(t) == 0


class Backend:
    """A SIP server stand-in on loopback: answers each INVITE 486 at once (from its own
    address, as a server does) and records it; ACKs and the rest are ignored."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.got: list[Request] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            msg = parse_message(data)
            if isinstance(msg, Request) and msg.method == "INVITE":
                self.got.append(msg)
                self.sock.sendto(bytes(build_response(msg, 486, to_tag="b")), addr)

    def invites(self, quiet: float = 0.5) -> list[Request]:
        time.sleep(quiet)
        got, self.got = self.got, []
        return got

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def _invite(ua: socket.socket, dispatcher: Node, call_id: str) -> None:
    me = ua.getsockname()[1]
    ua.sendto(raw_request("INVITE", f"sip:service@127.0.0.1:{dispatcher.sip_port}",
                          via_port=me, call_id=call_id, from_uri=f"sip:ua@127.0.0.1:{me}",
                          to=f"<sip:service@127.0.0.1:{dispatcher.sip_port}>").encode(),
              ("127.0.0.1", dispatcher.sip_port))


def _final_for(ua: socket.socket, call_id: str) -> Response:
    while True:  # the finals of earlier calls come first
        resp = final(ua)
        if resp.call_id == call_id:
            return resp


@pytest.fixture
def ua() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


def _address(node: Node) -> object:
    (server,) = node.get("/servers", "t0ken")["servers"]
    return server["address"]


def _wait_address(node: Node, want: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _address(node) != want:
        assert time.monotonic() < deadline, (_address(node), node.log.read_text()[-2000:])
        time.sleep(0.1)


def test_an_srv_name_is_followed_and_its_ttl_honoured(
    tmp_path: Path, ua: socket.socket
) -> None:
    with Backend() as one, Backend() as two:
        zone = {("_sip._udp.servers.test", "SRV"): [f"0 0 {one.port} a.servers.test."],
                ("a.servers.test", "A"): ["127.0.0.1"]}
        with DnsServer(zone, ttl=1) as dns:
            node = start_dispatcher(tmp_path, ["sip:servers.test"], "--probe", "off",
                                    "--dns-server", dns.address)
            try:
                _wait_address(node, f"udp:127.0.0.1:{one.port}")
                _invite(ua, node, "srv-1")
                assert [r.call_id for r in one.invites()] == ["srv-1"]
                # The record moves; after its TTL (1 s) the dispatcher follows it.
                dns.zone[("_sip._udp.servers.test", "SRV")] = [f"0 0 {two.port} a.servers.test."]
                _wait_address(node, f"udp:127.0.0.1:{two.port}")
                _invite(ua, node, "srv-2")
                assert [r.call_id for r in two.invites()] == ["srv-2"]
                assert one.invites() == []
                assert dns.queries[("_sip._udp.servers.test", "SRV")] >= 2
            finally:
                terminate(node.proc, timeout=3)
    assert "Traceback" not in node.log.read_text()


def test_localhost_needs_no_dns_and_answers_come_back(tmp_path: Path, ua: socket.socket) -> None:
    with Backend() as backend:
        node = start_dispatcher(tmp_path, [f"sip:localhost:{backend.port}"], "--probe", "off")
        try:
            assert _address(node) == f"udp:127.0.0.1:{backend.port}"
            _invite(ua, node, "lh")
            assert final(ua).status == 486  # the server's answer, not the dispatcher's 503
            assert [r.call_id for r in backend.invites(0.0)] == ["lh"]
        finally:
            terminate(node.proc, timeout=3)


@pytest.mark.parametrize("silent", [True, False], ids=["dead-dns", "nxdomain"])
def test_a_name_that_fails_leaves_its_server_unused_and_a_clean_503(
    tmp_path: Path, ua: socket.socket, silent: bool
) -> None:
    with DnsServer(silent=silent) as dns, Backend() as backend:
        node = start_dispatcher(
            tmp_path, ["sip:nowhere.test:5071", f"sip:127.0.0.1:{backend.port};id=lit"],
            "--probe", "off", "--dns-server", dns.address, "--algorithm", "rr",
        )
        try:
            started = time.monotonic()
            for n in range(4):  # round robin would give two to the unresolved one
                _invite(ua, node, f"c{n}")
            assert len(backend.invites()) == 4
            assert time.monotonic() - started < 2.0  # nothing waited for the DNS
            node.post("/servers/lit/state", {"state": "disabled"}, "t0ken")
            _invite(ua, node, "none-left")
            assert _final_for(ua, "none-left").status == 503
            deadline = time.monotonic() + 10  # the dead DNS: a 2 s timeout, then a warning
            while "nowhere.test" not in node.log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert dns.queries[("nowhere.test", "A")] >= 1
            servers = {s["id"]: s for s in node.get("/servers", "t0ken")["servers"]}
            assert servers["sip:nowhere.test:5071"]["address"] is None
        finally:
            terminate(node.proc, timeout=5)
    log = node.log.read_text()
    assert "Traceback" not in log
    assert "nowhere.test" in log  # one warning line for the streak
