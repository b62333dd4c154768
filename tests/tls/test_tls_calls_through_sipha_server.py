"""SIP over TLS through a sipha server: the load tester registers users and calls them over
TLS (the server proxies to the users' TLS contacts, checking their certificates), the CLI's
``--transport tls``, and a load tester that does not trust the server's CA refusing cleanly."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sipha.common.certs import CertFiles
from sipha.common.loop import run
from sipha.common.process import free_port
from sipha.loadtest.api import run_local
from sipha.loadtest.protocol import UserRange
from sipha.loadtest.runner import AgentRunner
from tests.loadtest.helpers import make_plan
from tests.server.helpers import add_user, server


def _tls_flags(certs: CertFiles, port: int) -> list[str]:
    return ["--listen", f"tls:127.0.0.1:{port}", "--tls-cert", str(certs.server_cert),
            "--tls-key", str(certs.server_key), "--tls-ca", str(certs.ca)]


def test_users_register_and_are_called_over_tls(tmp_path: Path, certs: CertFiles) -> None:
    store = f"sqlite:{tmp_path / 'users.db'}"
    for n in (1, 2):
        add_user(store, f"user{n}", "pw")
    tls_port = free_port(kind=socket.SOCK_STREAM)
    # Trusted: the agent's UAC calls without credentials and its UAS does not echo the
    # Record-Route, so ACK and BYE carry no dialog token (tests/server/test_open_relay.py).
    trusted = ("--trusted", "127.0.0.1")
    with server(tmp_path, store=store, extra=(*_tls_flags(certs, tls_port), *trusted)) as srv:
        users = UserRange(prefix="user", first=1, count=2, domain="127.0.0.1", password="pw")
        plan = make_plan(tls_port, scenario="register+call", rate=20, max_calls=40,
                         duration=None, users=users, t1=0.1, transport="tls",
                         tls_ca=str(certs.ca), tls_cert=str(certs.server_cert),
                         tls_key=str(certs.server_key))
        totals = run(run_local(plan)).totals
        status = srv.status()
    assert totals.transactions_ok == 2
    assert totals.transactions_failed == 0
    assert (totals.calls_attempted, totals.calls_successful, totals.calls_failed) == (40, 40, 0)
    assert status["calls"]["proxied"] == 40  # type: ignore[index]
    transport = status["transport"]
    assert transport["tls_failures"] == 0  # type: ignore[index]
    # The registering UAS, the calling UAC: two TLS connections accepted, none refused.
    assert transport["tcp_accepted"] >= 2  # type: ignore[index]


def test_load_cli_calls_the_answering_service_over_tls(tmp_path: Path, certs: CertFiles) -> None:
    tls_port = free_port(kind=socket.SOCK_STREAM)
    with server(tmp_path, extra=_tls_flags(certs, tls_port)):
        proc = subprocess.run(
            [sys.executable, "-m", "sipha", "load", "call", f"127.0.0.1:{tls_port}",
             "--transport", "tls", "--tls-ca", str(certs.ca), "--rate", "20",
             "--max-calls", "20", "--quiet"],
            capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    assert "successful 20 failed 0" in proc.stdout


def test_a_load_tester_not_trusting_the_servers_ca_refuses_and_counts(
    tmp_path: Path, certs: CertFiles, other_ca: CertFiles, caplog: pytest.LogCaptureFixture
) -> None:
    tls_port = free_port(kind=socket.SOCK_STREAM)
    plan = make_plan(tls_port, rate=10, max_calls=3, duration=None, transport="tls",
                     tls_ca=str(other_ca.ca), recv_timeout=0.5, drain_timeout=5.0)
    runner = AgentRunner(plan, plan.options)

    async def main() -> None:
        await runner.run()  # the plan's start_at is now: the run begins at once

    with server(tmp_path, extra=_tls_flags(certs, tls_port)) as srv, \
            caplog.at_level(logging.INFO):
        asyncio.run(main())
        assert srv.status()["calls"]["proxied"] == 0  # type: ignore[index]
    totals = runner.totals
    assert (totals.calls_attempted, totals.calls_successful) == (3, 0)
    assert totals.calls_failed == 3
    assert runner.tls_failures >= 1
    warnings = [r for r in caplog.records if "certificate verify failed" in r.getMessage()]
    assert len(warnings) == 1, "said once, not once per attempt"
    assert not [r for r in caplog.records if r.exc_info]
