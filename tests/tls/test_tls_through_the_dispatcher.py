"""The dispatcher and TLS: it terminates TLS from callers and forwards to servers over UDP; it
reaches a server over mutual TLS when the server's URI says ``transport=tls``; and it refuses a
server whose certificate does not chain to its CA (counted, the server marked down, no
traceback)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from sipha.common.certs import CertFiles
from sipha.common.loop import run
from sipha.common.process import free_port, terminate
from sipha.loadtest.api import run_local
from tests.dispatcher.cluster import Node, cluster, spawn_server, start_dispatcher, wait_server
from tests.loadtest.helpers import make_plan


def _tls(certs: CertFiles) -> list[str]:
    return ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
            "--tls-ca", str(certs.ca)]


def test_the_dispatcher_terminates_tls_and_forwards_over_udp(
    tmp_path: Path, certs: CertFiles
) -> None:
    with cluster(tmp_path, [1, 1], "--algorithm", "rr", *_tls(certs),
                 transports=("tls", "udp")) as c:
        assert c.dispatcher is not None
        plan = make_plan(c.dispatcher.sip_port, rate=20, max_calls=30, duration=None,
                         transport="tls", tls_ca=str(certs.ca), t1=0.1)
        totals = run(run_local(plan)).totals
        answered = [int(s.get("/status")["calls"]["answered"]) for s in c.servers]
        transport = c.dispatcher.get("/status", c.token)["transport"]
    assert (totals.calls_attempted, totals.calls_successful, totals.calls_failed) == (30, 30, 0)
    assert answered == [15, 15]  # rr over UDP behind the TLS listener
    assert transport["tcp_accepted"] == 1  # one TLS connection carried every call
    assert transport["tls_failures"] == 0


def _tls_server(tmp_path: Path, certs: CertFiles) -> tuple[Node, int]:
    tls_port = free_port(kind=socket.SOCK_STREAM)
    node = spawn_server(tmp_path, 0, [
        "--listen", f"tls:127.0.0.1:{tls_port}", *_tls(certs), "--tls-require-client-cert",
    ])
    wait_server(node)
    return node, tls_port


def test_the_dispatcher_reaches_a_server_over_mutual_tls(
    tmp_path: Path, certs: CertFiles
) -> None:
    server, tls_port = _tls_server(tmp_path, certs)
    dispatcher = None
    try:
        dispatcher = start_dispatcher(
            tmp_path, [f"sip:127.0.0.1:{tls_port};transport=tls"], *_tls(certs),
            "--tls-client-cert", str(certs.client_cert), "--tls-client-key",
            str(certs.client_key),
        )
        plan = make_plan(dispatcher.sip_port, rate=20, max_calls=20, duration=None, t1=0.1)
        totals = run(run_local(plan)).totals
        status = server.get("/status")
    finally:
        if dispatcher is not None:
            terminate(dispatcher.proc, timeout=3)
        server.kill()
    assert (totals.calls_attempted, totals.calls_successful, totals.calls_failed) == (20, 20, 0)
    assert status["calls"]["answered"] == 20
    assert status["transport"]["tcp_accepted"] >= 1


def test_a_server_certificate_from_another_ca_is_refused_and_the_server_marked_down(
    tmp_path: Path, certs: CertFiles, other_ca: CertFiles
) -> None:
    server, tls_port = _tls_server(tmp_path, certs)
    dispatcher = None
    try:
        dispatcher = start_dispatcher(
            tmp_path, [f"sip:127.0.0.1:{tls_port};transport=tls"],
            "--tls-ca", str(other_ca.ca), "--tls-client-cert", str(other_ca.client_cert),
            "--tls-client-key", str(other_ca.client_key),
        )
        deadline = time.monotonic() + 20
        states: list[str] = []
        while time.monotonic() < deadline:
            status = dispatcher.get("/status", "t0ken")
            states = [s["state"] for s in dispatcher.get("/servers", "t0ken")["servers"]]
            if states == ["inactive"] and status["transport"]["tls_failures"] >= 2:
                break
            time.sleep(0.2)
        assert states == ["inactive"]
        assert status["transport"]["tls_failures"] >= 2  # each probe's handshake refused
        # No connection got as far as SIP: each handshake ended at the certificate check.
        seen = server.get("/status")["transport"]
        assert seen["tls_handshakes"] >= 2
        assert seen["tcp_accepted"] == 0
    finally:
        if dispatcher is not None:
            terminate(dispatcher.proc, timeout=3)
        server.kill()
    log = dispatcher.log.read_text()
    assert "certificate verify failed" in log
    assert "Traceback" not in log
