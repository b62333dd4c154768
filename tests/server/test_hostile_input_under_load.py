"""Malformed and hostile input while SIPp runs a call load: no call fails, and every
malformed request that can be answered gets its 400."""

from __future__ import annotations

import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sipha.sip import SipParseError, StreamParser
from sipha.transport import TransportConfig
from tests.messages import sipp_invite
from tests.server.helpers import Server, server
from tests.sip.malformed_corpus import CORPUS, LAZY
from tests.sipp import run_uac

MAX_DATAGRAM = TransportConfig().max_datagram_size

def _udp_answer(sock: socket.socket, data: bytes, port: int) -> bytes:
    sock.sendto(data, ("127.0.0.1", port))
    return sock.recv(65535).split(b"\r\n", 1)[0]


def _corpus_over_udp(srv: Server) -> int:
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        for name, data, status, answerable in CORPUS:
            if not data or len(data) > MAX_DATAGRAM:  # dropped unread (counted)
                continue
            if not answerable:
                sock.sendto(data, ("127.0.0.1", srv.port))
                continue
            line = _udp_answer(sock, data, srv.port)
            assert line.startswith(f"SIP/2.0 {status} ".encode()), (name, line)
            answered += 1
        # Parsed fine, broken in a header the server reads: still a 400.
        for name, data, field in LAZY:
            call_data = data.replace(b"1-12345@127.0.0.1", f"lazy-{name}".encode())
            line = _udp_answer(sock, call_data, srv.port)
            if field == "contacts":  # read only by the registrar and for a hold-timer BYE
                assert line.startswith(b"SIP/2.0 "), (name, line)
                continue
            assert line.startswith(b"SIP/2.0 400 "), (name, line)
            answered += 1
    return answered


def _stream_verdict(data: bytes) -> str:
    """What the SIP core's stream parser makes of ``data``: "answer" (400 and the connection
    stays), "close" (framing lost: the connection is closed), or "wait" (a legal prefix)."""
    parser = StreamParser()
    parser.feed(data)
    try:
        return "wait" if parser.next_message() is None else "message"
    except SipParseError as err:
        if parser.broken is not None:
            return "close"
        return "answer" if err.partial is not None and err.partial.answerable else "drop"


def _corpus_over_tcp(srv: Server) -> int:
    answered = 0
    for name, data, status, _answerable in CORPUS:
        verdict = _stream_verdict(data)
        if verdict not in ("answer", "close"):
            continue
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as conn:
            conn.sendall(data)
            reply = conn.recv(65535)
            if verdict == "close":
                # A broken Content-Length loses the framing: nothing after it can be trusted.
                while reply and not reply.endswith(b"\r\n\r\n"):
                    reply += conn.recv(65535)
                assert conn.recv(65535) == b"", name
                continue
            line = reply.split(b"\r\n", 1)[0]
            assert line.startswith(f"SIP/2.0 {status} ".encode()), (name, line)
            answered += 1
    return answered


def _never_ending_header(srv: Server) -> None:
    """A TCP peer that never ends its header: the server must cut it off."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as conn:
        conn.sendall(b"INVITE sip:service@127.0.0.1 SIP/2.0\r\nSubject: ")
        chunk = b"a" * 8192
        deadline = time.monotonic() + 10
        closed = False
        while time.monotonic() < deadline:
            try:
                conn.sendall(chunk)
            except OSError:  # reset by the server
                closed = True
                break
        assert closed, "the server kept buffering a never-ending header"


def _garbage_flood(srv: Server, count: int = 5000) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(count):
            sock.sendto(os.urandom(64 + i % 400), ("127.0.0.1", srv.port))
            if i % 500 == 0:
                time.sleep(0.01)  # a flood, but not one that starves SIPp's own socket


def test_hostile_input_while_sipp_load_runs(tmp_path: Path) -> None:
    with server(tmp_path) as srv, ThreadPoolExecutor(max_workers=1) as pool:
        load = pool.submit(run_uac, srv.target, rate=100, calls=800, timeout=60)
        deadline = time.monotonic() + 10
        while srv.status()["requests"].get("INVITE", 0) == 0:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "the SIPp load did not start"
            time.sleep(0.05)
        answered = _corpus_over_udp(srv)
        answered += _corpus_over_tcp(srv)
        _never_ending_header(srv)
        _garbage_flood(srv)
        assert load.running(), "the hostile input should overlap the load"
        result = load.result(timeout=90)
        assert (result.successful, result.failed) == (800, 0), result.stdout
        transport = srv.status()["transport"]
        assert transport["answered_400"] >= answered  # type: ignore[index]
        assert transport["malformed"] >= answered + 5000 - 10  # type: ignore[index]
        # Still serving after all of it.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(5)
            # (a fresh branch: the corpus's one names a live transaction of the server)
            fresh = sipp_invite("after-the-storm").replace(b"z9hG4bK-12345-1-0", b"z9hG4bKcalm")
            line = _udp_answer(sock, fresh, srv.port)
            assert line.startswith(b"SIP/2.0 180")
