"""A PROTOS c07-sip style suite (malformed INVITEs, each followed by its CANCEL) sent three
times to a sipha server and to a sipha dispatcher: every probe between batches is answered,
nothing is logged as an exception, and the passes leave nothing behind (the resident memory
after the third pass is within 10 % of that after the first)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from sipha.common.process import terminate
from tests.dispatcher.cluster import spawn_server, start_dispatcher, wait_server
from tests.server.helpers import server
from tests.server.malformed_invites import Case, generate, send_pass

PASSES = 3
PROBE_EVERY = 50
# The callee rings until the CANCEL comes (487), as a phone would: the INVITE stays open
# long enough for its CANCEL to find it.
RING = '[[answer]]\npattern = "ring"\naction = "ring-no-answer"\n'


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _passes(sock: socket.socket, cases: list[Case], target: tuple[str, int], pid: int) -> list[int]:
    """Send every pass; return the target's RSS after each (in KiB)."""
    sizes = []
    for n in range(PASSES):
        unanswered = send_pass(sock, cases, target, probe_every=PROBE_EVERY, tag=f"pass{n}-")
        assert unanswered == [], f"pass {n}: probes unanswered after {unanswered[:5]}"
        sizes.append(_rss_kib(pid))
    return sizes


def _assert_clean_log(log: Path) -> None:
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[text.index("Traceback") - 300 :][:3000]
    assert " ERROR " not in text, text[text.index(" ERROR ") - 100 :][:3000]


def test_suite_generates_thousands_of_distinct_cases() -> None:
    cases = generate("127.0.0.1", 5060, user="ring", local_port=5070)
    assert len(cases) > 3000
    assert len({c.invite for c in cases}) == len(cases)
    assert cases == generate("127.0.0.1", 5060, user="ring", local_port=5070)  # deterministic
    assert all(c.cancel.startswith(b"CANCEL sip:ring@127.0.0.1:5060") for c in cases)
    assert max(len(c.invite) for c in cases) < 65_000  # one UDP datagram each


def test_server_survives_three_passes_and_keeps_no_memory(tmp_path: Path) -> None:
    with server(tmp_path, config=RING, answer=()) as srv, socket.socket(
        socket.AF_INET, socket.SOCK_DGRAM
    ) as sock:
        sock.bind(("127.0.0.1", 0))
        cases = generate("127.0.0.1", srv.port, user="ring", local_port=sock.getsockname()[1])
        started = time.monotonic()
        rss = _passes(sock, cases, ("127.0.0.1", srv.port), srv.proc.pid)
        assert time.monotonic() - started < 60
        assert rss[-1] <= rss[0] * 1.10, f"RSS after each pass (KiB): {rss}"
        status = srv.status()
        transport = status["transport"]
        assert isinstance(transport, dict)
        # The error counters are keyed by kind, not by what the peer wrote.
        assert len(transport["reasons"]) <= 64
    _assert_clean_log(srv.log)


def test_dispatcher_survives_three_passes_and_keeps_no_memory(tmp_path: Path) -> None:
    config = tmp_path / "ring.toml"
    config.write_text(RING)
    backend = spawn_server(tmp_path, 0, extra=["--config", str(config)])
    dispatcher = None
    try:
        wait_server(backend)
        dispatcher = start_dispatcher(tmp_path, [backend.uri])
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = dispatcher.sip_port
            cases = generate("127.0.0.1", port, user="ring", local_port=sock.getsockname()[1])
            rss = _passes(sock, cases, ("127.0.0.1", port), dispatcher.proc.pid)
            assert rss[-1] <= rss[0] * 1.10, f"RSS after each pass (KiB): {rss}"
    finally:
        if dispatcher is not None:
            terminate(dispatcher.proc, timeout=3)
        backend.kill()
    assert dispatcher is not None
    _assert_clean_log(dispatcher.log)
    _assert_clean_log(backend.log)


def test_dispatcher_keeps_nothing_of_3000_datagrams_of_60_kb(tmp_path: Path) -> None:
    backend = spawn_server(tmp_path, 0)
    dispatcher = None
    try:
        wait_server(backend)
        dispatcher = start_dispatcher(tmp_path, [backend.uri])
        port = dispatcher.sip_port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            cases = generate("127.0.0.1", port, user="service", local_port=sock.getsockname()[1])
            big = [c for c in cases if len(c.invite) > 40_000][:1]
            assert big
            probe = Case(0, "after", cases[0].invite, cases[0].cancel)
            before = _rss_kib(dispatcher.proc.pid)
            for n in range(3000):
                data = big[0].invite.replace(b"c07-", f"big{n}-".encode())
                sock.sendto(data, ("127.0.0.1", port))
                if n % 500 == 499:  # let the dispatcher keep up: the kernel queue is finite
                    assert send_pass(sock, [probe], ("127.0.0.1", port), probe_every=1) == []
            after = _rss_kib(dispatcher.proc.pid)
            status = dispatcher.get("/status", "t0ken")
            assert status["transport"]["oversized_datagrams"] >= 2900
            assert after - before < 10 * 1024, (before, after)
    finally:
        if dispatcher is not None:
            terminate(dispatcher.proc, timeout=3)
        backend.kill()
    _assert_clean_log(dispatcher.log)
