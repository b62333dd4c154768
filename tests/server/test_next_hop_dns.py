"""Next hops named by DNS (issue 14): resolved off the event loop through the configured DNS
server (SRV, then A); a missing name is a clean 503 and a dead DNS server a 408, while the
server keeps answering everything else."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dns_server import DnsServer
from tests.server.helpers import server
from tests.server.outside import Recorder, final, raw_request, requests_in


@pytest.fixture
def ua() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


def _in_dialog(ua: socket.socket, port: int, host: str, call_id: str) -> None:
    me = ua.getsockname()[1]
    ua.sendto(raw_request("MESSAGE", f"sip:bob@{host}", via_port=me, call_id=call_id,
                          from_uri="sip:a@x", to="<sip:bob@y>;tag=t").encode(),
              ("127.0.0.1", port))


def test_srv_names_are_followed_and_a_missing_name_is_503(
    tmp_path: Path, ua: socket.socket
) -> None:
    with Recorder() as peer:
        zone = {("_sip._udp.peer.test", "SRV"): [f"0 0 {peer.port} host.peer.test."],
                ("host.peer.test", "A"): ["127.0.0.1"]}
        with DnsServer(zone) as dns, server(
            tmp_path, extra=("--trusted", "127.0.0.1", "--dns-server", dns.address)
        ) as srv:
            _in_dialog(ua, srv.port, "peer.test", "srv")
            got = requests_in(peer.drain())
            assert got
            assert got[0].method == "MESSAGE"
            _in_dialog(ua, srv.port, "nowhere.test", "missing")
            assert final(ua).status == 503
            assert srv.status()["security"] == {"dns_failure": 1}


def test_a_dead_dns_server_blocks_nothing(tmp_path: Path, ua: socket.socket) -> None:
    with DnsServer(silent=True) as dns, server(
        tmp_path, config="dns_timeout = 1.5\n",
        extra=("--trusted", "127.0.0.1", "--dns-server", dns.address),
    ) as srv:
        me = ua.getsockname()[1]
        for n in range(3):
            _in_dialog(ua, srv.port, f"slow{n}.test", f"slow{n}")
        # Meanwhile the server answers at once (today: frozen for the resolver's timeouts).
        started = time.monotonic()
        ua.sendto(raw_request("OPTIONS", f"sip:127.0.0.1:{srv.port}", via_port=me,
                              call_id="ping", from_uri="sip:a@x",
                              to=f"<sip:127.0.0.1:{srv.port}>").encode(),
                  ("127.0.0.1", srv.port))
        ping = final(ua)
        assert (ping.status, ping.call_id) == (200, "ping")
        assert time.monotonic() - started < 1.0  # the lookups take 1.5 s
        assert sorted(final(ua, timeout=10).status for _ in range(3)) == [408, 408, 408]
