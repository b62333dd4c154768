"""Hostile input: an INVITE with Max-Forwards 0 is answered 483 and leaves nothing behind.

The PROTOS c07-sip replay found it: the 483 left a pending transaction with no attempt (its raw
bytes held for 180 s), and the INVITE's retransmission or its CANCEL then raised IndexError
inside the router. Every input to a transaction must have a defined answer.
"""

from __future__ import annotations

import random

import pytest

from sipha.dispatcher.router import Router, RouterSettings
from sipha.dispatcher.servers import parse_server
from sipha.sip import Request, SipParseError, parse_message
from sipha.transport import Peer

UAC = Peer("udp", "127.0.0.9", 5099)


def make_router() -> Router:
    r = Router(RouterSettings(algorithm="rr"), advertise=("127.0.0.1", 5060),
               secret=b"k" * 16, rng=random.Random(1))
    for i in range(3):
        r.add_server(parse_server(f"sip:127.0.0.1:{5071 + i};probe=off"))
    return r


def request(method: str, max_forwards: int) -> Request:
    data = (
        f"{method} sip:service@127.0.0.1:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.9:5099;branch=z9hG4bKmf0\r\n"
        "From: <sip:sipp@127.0.0.9:5099>;tag=f1\r\nTo: <sip:service@127.0.0.1:5060>\r\n"
        f"Call-ID: mf0\r\nCSeq: 1 {method}\r\nMax-Forwards: {max_forwards}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(data)
    assert isinstance(msg, Request)
    return msg


def test_an_invite_out_of_hops_is_refused_with_483_and_opens_no_transaction() -> None:
    r = make_router()
    with pytest.raises(SipParseError) as err:
        r.on_request(request("INVITE", 0), UAC, now=0.0)
    assert err.value.status == 483
    assert r.state.pending == {}
    assert sum(s.pending for s in r.servers()) == 0


def test_its_retransmission_is_refused_again_not_an_exception() -> None:
    r = make_router()
    for now in (0.0, 0.5):
        with pytest.raises(SipParseError) as err:  # the transport answers it
            r.on_request(request("INVITE", 0), UAC, now=now)
        assert err.value.status == 483
    assert r.state.pending == {}


@pytest.mark.parametrize("max_forwards", [70, 0])
def test_its_cancel_gets_481_not_an_exception(max_forwards: int) -> None:
    r = make_router()
    with pytest.raises(SipParseError):
        r.on_request(request("INVITE", 0), UAC, now=0.0)
    [reply] = r.on_request(request("CANCEL", max_forwards), UAC, now=0.5)
    assert reply.peer == UAC
    assert parse_message(reply.data).status == 481  # type: ignore[union-attr]
    assert r.state.pending == {}
