"""SIPp uac over TCP -> dispatcher listening on TCP -> four sipha servers answering `service`
(over UDP, as they listen): 300 calls, none failed by SIPp's own count, rr's shares hold, and
the dispatcher holds no dialog afterwards. The dispatcher also listens on UDP: that is where
its requests to UDP servers leave from (without it, it refuses to start: see the test below).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sipha.common.process import free_port
from tests.dispatcher.cluster import cluster
from tests.sipp import run_uac

CALLS = 300


def test_sipp_over_tcp_300_calls_none_failed(tmp_path: Path) -> None:
    with cluster(
        tmp_path, [1, 1, 1, 1], "--algorithm", "rr", "--probe", "on", transports=("tcp", "udp")
    ) as c:
        # -t t1: every call over one TCP connection, as a SIP proxy in front would send them.
        result = run_uac(c.target, rate=100, calls=CALLS, timeout=60, transport="t1")
        assert (result.created, result.successful, result.failed) == (CALLS, CALLS, 0), (
            result.stdout
        )
        answered = [int(s.get("/status")["calls"]["answered"]) for s in c.servers]
        assert sum(answered) == CALLS
        assert max(answered) - min(answered) <= 1, answered  # rr over TCP too
        api = c.api_servers()
        assert sorted(s["calls_total"] for s in api.values()) == sorted(answered)
        time.sleep(0.2)  # the last BYE's 200 reaches the dispatcher after SIPp's count
        assert all(s["dialogs"] == 0 for s in c.api_servers().values())


def test_udp_servers_without_a_udp_listener_are_refused_at_start() -> None:
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "sipha.cli", "dispatcher", "--listen", f"tcp:127.0.0.1:{port}",
         "--server", "sip:127.0.0.1:5071", "--probe", "off"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 2
    assert "listen: server 'sip:127.0.0.1:5071' is reached over UDP" in done.stderr
    assert "no UDP listener" in done.stderr
