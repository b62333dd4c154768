"""SIPp's built-in uac calling the answering extension `service`: every call succeeds."""

from __future__ import annotations

from pathlib import Path

from tests.server.helpers import server
from tests.sipp import run_uac


def test_1000_calls_at_100_cps_udp_all_successful(tmp_path: Path) -> None:
    with server(tmp_path) as srv:
        result = run_uac(srv.target, rate=100, calls=1000, timeout=60)
        assert result.successful == 1000, result.stdout
        assert result.failed == 0
        status = srv.status()
        assert status["requests"] == {"INVITE": 1000, "ACK": 1000, "BYE": 1000, "OPTIONS": 1}
        assert status["calls"]["answered"] == 1000  # type: ignore[index]
        assert status["active_calls"] == 0  # every call ended by SIPp's BYE
        assert status["responses"] == {"180": 1000, "200": 2001}


def test_calls_over_tcp_all_successful(tmp_path: Path) -> None:
    with server(tmp_path) as srv:
        result = run_uac(srv.target, rate=50, calls=100, timeout=30, transport="t1")
        assert (result.successful, result.failed) == (100, 0), result.stdout
