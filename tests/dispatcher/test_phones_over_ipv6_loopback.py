"""Two baresip phones register and call each other over IPv6 loopback (``::1``), UDP, through a
dispatcher and a sipha server: listeners, Via, Path and Record-Route with IPv6 references."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sipha.common.process import free_port, terminate, wait_tcp
from tests.phones import Account, Phone, phones
from tests.server.helpers import add_user

pytestmark = pytest.mark.timeout(60)


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "sipha.cli", *args], stdout=out,
                                stderr=subprocess.STDOUT)


def test_register_and_call_over_ipv6_loopback(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'cluster.db'}"
    for user in ("alice", "bob"):
        add_user(store, user, f"{user}-secret")
    sport, dport = free_port("::1"), free_port("::1")
    shttp, dhttp = free_port(), free_port()
    procs = []
    try:
        procs.append(_start(["server", "--listen", f"udp:[::1]:{sport}", "--store", store,
                             "--http", f"127.0.0.1:{shttp}", "--alias", "[::1]"],
                            tmp_path / "server.log"))
        wait_tcp("127.0.0.1", shttp, timeout=15)
        procs.append(_start(["dispatcher", "--listen", f"udp:[::1]:{dport}",
                             "--server", f"sip:[::1]:{sport}", "--http", f"127.0.0.1:{dhttp}"],
                            tmp_path / "dispatcher.log"))
        wait_tcp("127.0.0.1", dhttp, timeout=15)

        def phone(name: str) -> Phone:
            account = Account(name, f"{name}-secret", outbound=f"sip:[::1]:{dport};transport=udp")
            return Phone(name, account, tmp_path, host="::1")

        with phones(phone("alice"), phone("bob")) as (a, b):
            a.registered()
            b.registered()
            a.command("dial", "sip:bob@sipha.local")
            b.wait_event("CALL_ESTABLISHED")
            a.wait_event("CALL_ESTABLISHED")
            a.command("hangup")
            b.wait_event("CALL_CLOSED")
            a.wait_event("CALL_CLOSED")
            trace = b.tail(10_000_000)
        # What bob saw came from the dispatcher's IPv6 listener, with IPv6 references.
        invite = trace[trace.index("INVITE sip:bob"):]
        invite = invite[: invite.index("\n\n")]
        assert re.search(rf"Record-Route: <sip:ds\w+-[a-z2-7]+@\[::1\]:{dport};lr>", invite)
        assert f"Via: SIP/2.0/UDP [::1]:{dport};branch=" in invite
    finally:
        for proc in procs:
            terminate(proc, timeout=5)
