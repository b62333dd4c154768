"""IPv6 end to end on ``::1``: a dispatcher and a server listening on ``[::1]``, SIPp's uac
answered through it. Every Via and Record-Route the cluster writes names ``[::1]`` as an
IPv6reference (RFC 3261 §25.1: ``sip:[::1]:5060``, never ``sip:::1:5060``)."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipha.common.process import free_port, terminate, wait_sip_options
from tests.server.helpers import add_user

pytestmark = pytest.mark.timeout(90)

V6 = "::1"


@contextlib.contextmanager
def _node(args: list[str], log: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sipha", *args], cwd=log.parent,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        try:
            wait_sip_options(V6, port, timeout=15)
        except TimeoutError:
            raise AssertionError(f"{args[0]} did not start:\n{log.read_text()}") from None
        yield proc
    finally:
        terminate(proc, timeout=10)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[int]:
    """A server and a dispatcher on [::1]; yields the dispatcher's port."""
    store = f"sqlite:{tmp_path / 'users.db'}"
    for user in ("alice", "bob"):
        add_user(store, user, f"{user}-secret")
    sport, dport = free_port(V6), free_port(V6)
    server = ["server", "--listen", f"udp:[{V6}]:{sport}", "--store", store,
              "--answer", "service"]
    dispatcher = ["dispatcher", "--listen", f"udp:[{V6}]:{dport}",
                  "--server", f"sip:[{V6}]:{sport}"]
    with _node(server, tmp_path / "server.log", sport), \
            _node(dispatcher, tmp_path / "dispatcher.log", dport):
        yield dport


def test_sipp_calls_over_ipv6(cluster: int, tmp_path: Path) -> None:
    out = subprocess.run(
        ["sipp", "-sn", "uac", f"[{V6}]:{cluster}", "-i", V6, "-p", str(free_port(V6)),
         "-m", "20", "-r", "20", "-timeout", "30", "-timeout_error", "-nostdin",
         "-trace_msg", "-message_file", str(tmp_path / "sipp.msg")],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    messages = (tmp_path / "sipp.msg").read_text()
    routes = re.findall(r"^Record-Route: (.*)$", messages, flags=re.M)
    assert routes
    assert all(f"[{V6}]" in r for r in routes)
