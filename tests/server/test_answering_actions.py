"""Dialplan actions over raw sockets: busy, reject CODE, ring-no-answer with CANCEL, and the
BYE the server sends itself at max_hold; then a graceful SIGTERM refusing new calls."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from sipha.sip import Request, Response, build_response
from tests.messages import SDP
from tests.server.helpers import SipClient, server

CONFIG = """
[[answer]]
pattern = "busy"
action = "busy"
[[answer]]
pattern = "decline"
action = "reject 603"
[[answer]]
pattern = "ring"
action = "ring-no-answer"
ring_timeout = 30
[[answer]]
pattern = "short"
action = "answer"
max_hold = 1.0
"""


def _ack(ua: SipClient, final: Response, call_id: str, ruri: str) -> None:
    lines = [
        f"ACK {ruri} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{ua.port};branch=z9hG4bKack{call_id}",
        f"From: {final.get('from')}", f"To: {final.get('to')}", f"Call-ID: {call_id}",
        "CSeq: 1 ACK", "Max-Forwards: 70", "Content-Length: 0",
    ]
    ua.send("\r\n".join(lines) + "\r\n\r\n")


def test_busy_and_reject(tmp_path: Path) -> None:
    with server(tmp_path, config=CONFIG) as srv, SipClient(srv.port) as ua:
        ua.request("INVITE", f"sip:busy@127.0.0.1:{srv.port}", body=SDP)
        assert ua.recv_final().status == 486
        ua.request("INVITE", f"sip:decline@127.0.0.1:{srv.port}", body=SDP)
        assert ua.recv_final().status == 603
        assert srv.status()["calls"]["rejected"] == 2  # type: ignore[index]


def test_ring_no_answer_until_cancel(tmp_path: Path) -> None:
    with server(tmp_path, config=CONFIG) as srv, SipClient(srv.port) as ua:
        ruri = f"sip:ring@127.0.0.1:{srv.port}"
        call_id = ua.request("INVITE", ruri, body=SDP)
        ringing = ua.recv()
        assert isinstance(ringing, Response)
        assert ringing.status == 180
        assert srv.status()["ringing"] == 1
        lines = [f"CANCEL {ruri} SIP/2.0", f"Via: {ringing.get_all('via')[0]}",
                 f"From: {ringing.get('from')}", f"To: <{ruri}>", f"Call-ID: {call_id}",
                 "CSeq: 1 CANCEL", "Max-Forwards: 70", "Content-Length: 0"]
        ua.send("\r\n".join(lines) + "\r\n\r\n")
        answers = {(r.method, r.status) for r in (ua.recv_final(), ua.recv_final())}
        assert answers == {("CANCEL", 200), ("INVITE", 487)}
        assert srv.status()["ringing"] == 0


def test_server_sends_bye_at_max_hold(tmp_path: Path) -> None:
    with server(tmp_path, config=CONFIG) as srv, SipClient(srv.port) as ua:
        ruri = f"sip:short@127.0.0.1:{srv.port}"
        call_id = ua.request("INVITE", ruri, body=SDP)
        ok = ua.recv_final()
        assert ok.status == 200
        assert ok.get("content-type") == "application/sdp"
        _ack(ua, ok, call_id, ruri)
        assert srv.status()["active_calls"] == 1
        bye = ua.recv(timeout=5)
        assert isinstance(bye, Request)
        assert bye.method == "BYE"
        assert bye.call_id == call_id
        assert bye.from_tag == ok.to_tag  # the server is the UAS: its tag is now From
        ua.send(bytes(build_response(bye, 200)))
        status = srv.status()
        assert status["active_calls"] == 0
        assert status["calls"]["ended_by_hold"] == 1  # type: ignore[index]


def test_sigterm_refuses_new_calls_and_exits_cleanly(tmp_path: Path) -> None:
    with server(tmp_path, config=CONFIG) as srv, SipClient(srv.port) as ua:
        ua.request("INVITE", f"sip:ring@127.0.0.1:{srv.port}", body=SDP)
        assert ua.recv().status == 180  # type: ignore[union-attr]
        os.kill(srv.proc.pid, signal.SIGTERM)  # a live INVITE transaction keeps it draining
        deadline = time.monotonic() + 5
        while srv.status()["draining"] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        ua.request("INVITE", f"sip:service@127.0.0.1:{srv.port}", body=SDP)
        refused = ua.recv_final()
        assert refused.status == 503
        assert refused.get("retry-after") == "5"
        assert srv.proc.wait(timeout=10) == 0
