"""The proxy's own answers over raw sockets: 404, 480, 483, 482, CANCEL/487, Timer C 408,
407 INVITE authentication, OPTIONS."""

from __future__ import annotations

from pathlib import Path

from sipha.sip import Request, Response, build_response
from sipha.sip.auth import build_credentials, parse_challenge
from tests.messages import SDP
from tests.server.helpers import SipClient, add_user, server

OPEN = ("--auth", "off")


def _final_after_trying(ua: SipClient) -> Response:
    first = ua.recv()
    assert isinstance(first, Response)
    if first.status == 100:
        return ua.recv_final()
    return first


def test_unknown_user_404_unregistered_480_max_forwards_483_loop_482(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'store.db'}"
    add_user(store, "idle", "pw")
    add_user(store, "loop", "pw")
    # --auth off: the proxy's own answers, not its authorization (test_open_relay.py).
    with server(tmp_path, store=store, extra=OPEN) as srv, SipClient(srv.port) as ua:
        ruri = f"sip:{{}}@127.0.0.1:{srv.port}"
        ua.request("INVITE", ruri.format("ghost"), body=SDP)
        assert _final_after_trying(ua).status == 404
        ua.request("INVITE", ruri.format("idle"), body=SDP)
        assert _final_after_trying(ua).status == 480
        lines = [
            f"INVITE {ruri.format('idle')} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{ua.port};branch=z9hG4bKmf0",
            f"From: <sip:a@127.0.0.1:{ua.port}>;tag=1", f"To: <{ruri.format('idle')}>",
            "Call-ID: mf0", "CSeq: 1 INVITE", "Max-Forwards: 0", "Content-Length: 0",
        ]
        ua.send("\r\n".join(lines) + "\r\n\r\n")
        assert ua.recv_final().status == 483
        # A contact pointing back at the server: the request spirals once (new Request-URI),
        # then comes back unchanged and is detected as a loop.
        assert ua.register("loop", "pw", contact=f"<sip:loop@127.0.0.1:{srv.port}>").status == 200
        ua.request("INVITE", ruri.format("loop"), body=SDP)
        assert _final_after_trying(ua).status == 482


def _answer(callee: SipClient, request: Request, status: int, tag: str = "callee") -> None:
    callee.send(bytes(build_response(request, status, to_tag=tag)), ("127.0.0.1", callee.server[1]))


def test_cancel_reaches_the_callee_and_the_caller_gets_487(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'store.db'}"
    add_user(store, "ringer", "pw")
    with server(tmp_path, store=store, extra=OPEN) as srv, SipClient(srv.port) as ua, \
            SipClient(srv.port) as callee:
        assert callee.register("ringer", "pw").status == 200
        call_id = ua.request("INVITE", f"sip:ringer@127.0.0.1:{srv.port}", body=SDP)
        invite = callee.recv()
        assert isinstance(invite, Request)
        assert invite.method == "INVITE"
        # Our Record-Route, signed for this dialog (ftag + token: policy.py).
        (rr,) = invite.get_all("record-route")
        assert rr.startswith(f"<sip:127.0.0.1:{srv.port};lr;ftag=ft")
        assert ";sphd=" in rr
        assert invite.max_forwards == 69
        _answer(callee, invite, 180)
        got = ua.recv()
        assert isinstance(got, Response)
        assert got.status == 100
        got = ua.recv()
        assert isinstance(got, Response)
        assert got.status == 180
        # CANCEL: the INVITE's Via (same branch), Call-ID and CSeq number (§9.1); the 180
        # carries that Via back unchanged.
        lines = [f"CANCEL sip:ringer@127.0.0.1:{srv.port} SIP/2.0",
                 f"Via: {got.get_all('via')[0]}", f"From: {got.get('from')}",
                 f"To: <sip:ringer@127.0.0.1:{srv.port}>", f"Call-ID: {call_id}",
                 "CSeq: 1 CANCEL", "Max-Forwards: 70", "Content-Length: 0"]
        ua.send("\r\n".join(lines) + "\r\n\r\n")
        cancel_ok = ua.recv_final()
        assert (cancel_ok.status, cancel_ok.method) == (200, "CANCEL")
        cancel = callee.recv()
        assert isinstance(cancel, Request)
        assert cancel.method == "CANCEL"
        assert cancel.via.branch == invite.via.branch  # matches the INVITE downstream
        _answer(callee, cancel, 200)
        _answer(callee, invite, 487)
        final = ua.recv_final()
        assert (final.status, final.method) == (487, "INVITE")
        ack = callee.recv()  # the proxy's client transaction ACKs the 487 hop by hop
        assert isinstance(ack, Request)
        assert ack.method == "ACK"


def test_timer_c_gives_408_and_cancels_the_ringing_callee(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'store.db'}"
    add_user(store, "sleepy", "pw")
    config = "[timers]\ntimer_c = 1.0\n"
    with server(tmp_path, store=store, config=config, extra=OPEN) as srv, \
            SipClient(srv.port) as ua, SipClient(srv.port) as callee:
        assert callee.register("sleepy", "pw").status == 200
        ua.request("INVITE", f"sip:sleepy@127.0.0.1:{srv.port}", body=SDP)
        invite = callee.recv()
        assert isinstance(invite, Request)
        _answer(callee, invite, 180)
        final = ua.recv_final(timeout=5)
        assert final.status == 408
        cancel = callee.recv()
        assert isinstance(cancel, Request)
        assert cancel.method == "CANCEL"
        # The callee answered before the CANCEL reached it: its 2xx still reaches the caller
        # (RFC 3261 §16.7 step 5, statelessly: the caller's transaction has its 408), who can
        # then ACK and BYE the call instead of leaving it up at the callee.
        _answer(callee, cancel, 481)
        _answer(callee, invite, 200)
        late = ua.recv_final()
        assert (late.status, late.method) == (200, "INVITE")
        assert [v.host for v in late.vias] == ["127.0.0.1"]  # the proxy's Via is gone


def test_invite_authentication_407(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'store.db'}"
    add_user(store, "alice", "pw")
    with server(tmp_path, store=store, extra=("--auth-invite",)) as srv, \
            SipClient(srv.port) as ua:
        ruri = f"sip:service@127.0.0.1:{srv.port}"
        ua.request("INVITE", ruri, body=SDP, from_user="alice")
        challenge = ua.recv_final()
        assert challenge.status == 407
        parsed = parse_challenge(challenge.get("proxy-authenticate") or "")
        wrong = build_credentials(parsed, method="INVITE", uri=ruri, username="alice",
                                  password="bad", cnonce="c1")
        ua.request("INVITE", ruri, body=SDP, from_user="alice",
                   headers=[f"Proxy-Authorization: {wrong}"])
        assert ua.recv_final().status == 403
        good = build_credentials(parsed, method="INVITE", uri=ruri, username="alice",
                                 password="pw", cnonce="c2")
        ua.request("INVITE", ruri, body=SDP, from_user="alice",
                   headers=[f"Proxy-Authorization: {good}"])
        ok = ua.recv_final()
        assert ok.status == 200
        assert ok.body.startswith(b"v=0")


def test_options_is_answered_200_with_allow(tmp_path: Path) -> None:
    with server(tmp_path) as srv, SipClient(srv.port) as ua:
        ua.request("OPTIONS", f"sip:127.0.0.1:{srv.port}")
        ok = ua.recv_final()
        assert ok.status == 200
        assert "INVITE" in (ok.get("allow") or "")
        assert ok.get("accept") == "application/sdp"
