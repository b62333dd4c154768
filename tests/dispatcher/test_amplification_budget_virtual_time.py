"""The dispatcher's amplification budget on virtual time: a spoofed INVITE nobody ACKs earns its
source one copy of each answer plus a bounded number of repeats, however often the server
resends; a caller that answered a request we relayed gets every repeat; memory stays bounded."""

from __future__ import annotations

import pytest

from sipha.dispatcher.amplification import AmplificationGuard, request_key, response_key
from sipha.sip import Request, build_response, parse_message
from sipha.transport import Peer
from tests.dispatcher.test_router_decisions_virtual_time import (
    UAC,
    answer,
    forwarded,
    invite,
    make_router,
)

VICTIM = Peer("udp", "192.0.2.66", 5060)


def test_first_copies_pass_repeats_draw_on_the_bucket() -> None:
    g = AmplificationGuard(rate=1.0, burst=2.0)
    assert all(g.allow(f"k{i}", VICTIM, 0.0) for i in range(50))  # all first copies
    assert [g.allow("k0", VICTIM, 0.0) for _ in range(3)] == [True, True, False]
    assert g.allow("k0", VICTIM, 1.0)  # one token back after a second
    assert g.suppressed == 1
    # Streams and verified hosts are never budgeted.
    assert all(g.allow("k0", Peer("tcp", VICTIM.host, 5060), 1.0) for _ in range(10))
    g.verify(VICTIM.host)
    assert all(g.allow("k0", VICTIM, 1.0) for _ in range(10))


def test_an_identity_is_forgotten_after_its_memory_and_memory_is_bounded() -> None:
    g = AmplificationGuard(rate=1.0, burst=1.0, memory=10.0, max_keys=100, max_hosts=10)
    g.allow("k", VICTIM, 0.0)
    assert g.allow("k", VICTIM, 0.0)  # the burst
    assert not g.allow("k", VICTIM, 0.0)
    assert g.allow("k", VICTIM, 10.0)  # a first copy again (and the bucket refilled anyway)
    for i in range(10_000):
        g.allow(f"x{i}", Peer("udp", f"198.51.100.{i % 250}", 5060), float(i) / 100)
        g.allow(f"x{i}", Peer("udp", f"198.51.100.{i % 250}", 5060), float(i) / 100)
    assert g.tracked <= 100 + 2 * 10
    with pytest.raises(ValueError, match="positive"):
        AmplificationGuard(memory=0)
    assert response_key("b", 200, "1 INVITE") != request_key("b", "200", "1 INVITE")


def _unacked_call(r_kw: dict[str, float], resends: int) -> tuple[int, int]:
    """One INVITE from UAC answered 200 and resent ``resends`` times by the server within one
    second (never ACKed): (datagrams relayed to UAC, repeats suppressed)."""
    r = make_router(**r_kw)
    [out] = r.on_request(invite(), UAC, now=0.0)
    ok = answer(forwarded(out), 200)
    relayed = 0
    for i in range(resends + 1):
        copy = parse_message(bytes(ok))
        relayed += sum(1 for s in r.on_response(copy, out.peer, now=i / (resends + 1))
                       if s.peer == UAC)
    return relayed, r.stats.amplification_suppressed


def test_a_2xx_nobody_acks_earns_one_copy_and_the_burst() -> None:
    relayed, suppressed = _unacked_call({"reflection_rate": 2.0, "reflection_burst": 3.0}, 30)
    # The first copy, the burst of 3, and at most 2 tokens refilled within the second.
    assert 4 <= relayed <= 6
    assert suppressed == 31 - relayed
    # Without the budget every copy is relayed (what the attack used).
    assert _unacked_call({"reflection_rate": 0.0}, 30) == (31, 0)


def test_a_caller_that_answered_our_request_gets_every_repeat() -> None:
    r = make_router(reflection_rate=1.0, reflection_burst=1.0)
    [out] = r.on_request(invite(), UAC, now=0.0)
    server = out.peer
    ok = answer(forwarded(out), 200)
    r.on_response(parse_message(bytes(ok)), server, now=0.01)
    # The server sends an INFO towards the caller (in the dialog, which goes on) ...
    bye_text = (
        "INFO sip:sipp@127.0.0.9:5099 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {server.host}:{server.port};branch=z9hG4bKsbye\r\n"
        "From: <sip:service@127.0.0.1:5060>;tag=s1\r\nTo: <sip:sipp@127.0.0.9:5099>;tag=f1\r\n"
        "Call-ID: c1\r\nCSeq: 7 INFO\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    bye = parse_message(bye_text)
    assert isinstance(bye, Request)
    [relayed_bye] = r.on_request(bye, server, now=0.02)
    assert relayed_bye.peer == UAC
    # ... and the caller answers it through us: it proved it receives what we send.
    reply = parse_message(bytes(build_response(forwarded(relayed_bye), 200)))
    assert [s.peer for s in r.on_response(reply, UAC, now=0.03)] == [server]
    for i in range(20):
        sends = r.on_response(parse_message(bytes(ok)), server, now=0.04 + i / 1000)
        assert [s.peer for s in sends] == [UAC]
    assert r.stats.amplification_suppressed == 0


def test_a_servers_resent_bye_to_an_unproven_caller_is_budgeted() -> None:
    r = make_router(reflection_rate=1.0, reflection_burst=2.0)
    [out] = r.on_request(invite(), UAC, now=0.0)
    server = out.peer
    bye_text = (
        "BYE sip:sipp@127.0.0.9:5099 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {server.host}:{server.port};branch=z9hG4bKsbye\r\n"
        "From: <sip:service@127.0.0.1:5060>;tag=s1\r\nTo: <sip:sipp@127.0.0.9:5099>;tag=f1\r\n"
        "Call-ID: c1\r\nCSeq: 7 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    relayed = 0
    for _ in range(11):  # Timer E's resends until Timer F, all at once here
        msg = parse_message(bye_text)
        assert isinstance(msg, Request)
        relayed += len(r.on_request(msg, server, now=0.5))
    assert relayed == 1 + 2
    assert r.stats.amplification_suppressed == 8


def test_a_caller_that_resends_its_request_is_answered_each_time() -> None:
    """A loaded path: SIPp resends its BYE, the server answers each copy; every answer goes
    back (1:1 is no amplification), though the caller never proved anything else."""
    r = make_router(reflection_rate=1.0, reflection_burst=1.0)
    [out] = r.on_request(invite(), UAC, now=0.0)
    r.on_response(answer(forwarded(out), 200), out.peer, now=0.01)
    relayed = 0
    for i in range(10):
        bye = invite(method="BYE", branch="z9hG4bKbye", to_tag="s1", cseq=2)
        [fwd] = r.on_request(bye, UAC, now=1.0 + i / 100)
        ok = answer(forwarded(fwd), 200)
        relayed += sum(1 for s in r.on_response(ok, fwd.peer, now=1.0 + i / 100)
                       if s.peer == UAC)
    assert relayed == 10
    assert r.stats.amplification_suppressed == 0


def test_a_caller_that_acks_our_2xx_with_its_to_tag_is_verified() -> None:
    r = make_router(reflection_rate=1.0, reflection_burst=1.0)
    [out] = r.on_request(invite(), UAC, now=0.0)
    ok = answer(forwarded(out), 200, tag="s1")
    assert [s.peer for s in r.on_response(parse_message(bytes(ok)), out.peer, 0.01)] == [UAC]
    # An ACK with another To tag proves nothing (a spoofer does not know the tag) ...
    r.on_request(invite(method="ACK", to_tag="guess", branch="z9hG4bKack0"), UAC, now=0.02)
    assert r.guard is not None
    assert not r.guard.verified(UAC.host)
    # ... the 2xx's own tag does: every repeat to that caller goes from now on.
    r.on_request(invite(method="ACK", to_tag="s1", branch="z9hG4bKack1"), UAC, now=0.03)
    assert r.guard.verified(UAC.host)
    for i in range(20):
        sends = r.on_response(parse_message(bytes(ok)), out.peer, now=0.04 + i / 1000)
        assert [s.peer for s in sends] == [UAC]
    assert r.stats.amplification_suppressed == 0
