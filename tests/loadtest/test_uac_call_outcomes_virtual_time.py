"""The UAC engine on virtual time: each way a call can end is classified as it should be."""

from __future__ import annotations

import random

import pytest

from sipha.loadtest.messages import MessageBuilder
from sipha.loadtest.protocol import UserRange
from sipha.loadtest.uac import UacEngine
from sipha.loadtest.wire import Scan, scan
from sipha.sip.auth import DigestVerifier, NonceAuthority
from tests.loadtest.helpers import make_plan

PEER = ("127.0.0.1", 5060)
CALLEE = MessageBuilder(local_host="127.0.0.1", local_port=5060, transport="udp",
                        target="127.0.0.1:5555", domain="127.0.0.1")


def engine(**kw: object) -> UacEngine:
    plan = make_plan(5060, rate=1.0, max_calls=1, duration=None, **kw)  # type: ignore[arg-type]
    return UacEngine(plan, plan.options, local_host="127.0.0.1", local_port=5555, t0=0.0,
                     rng=random.Random(1))


def sent(e: UacEngine) -> list[Scan]:
    out = [scan(d) for d in e.out]
    e.out.clear()
    return out


def answer(e: UacEngine, req: Scan, status: int, now: float, **kw: object) -> None:
    e.on_message(CALLEE.response(req, status, "X", to_tag=b"callee", **kw), PEER, now)  # type: ignore[arg-type]


def totals(e: UacEngine) -> tuple[int, int, dict[str, int]]:
    e.flush_partial_second()
    ok = sum(s.calls_successful for _, s in e.reports)
    failed = sum(s.calls_failed for _, s in e.reports)
    reasons: dict[str, int] = {}
    for _, s in e.reports:
        for k, n in s.failed_by_reason.items():
            reasons[k] = reasons.get(k, 0) + n
    return ok, failed, reasons


def test_answered_call_acks_holds_byes_and_succeeds() -> None:
    e = engine(hold=2.0)
    e.advance(0.01)
    (invite,) = sent(e)
    assert invite.method == b"INVITE"
    assert invite.body.startswith(b"v=0")
    answer(e, invite, 180, 0.02)
    answer(e, invite, 200, 0.05, extra=b"Contact: <sip:callee@127.0.0.1:5060>",
           body=b"v=0\r\n")
    (ack,) = sent(e)
    assert ack.method == b"ACK"
    assert ack.cseq_method == b"ACK"
    assert ack.to_tag == b"callee"
    e.advance(1.0)
    assert sent(e) == []  # holding
    e.advance(2.06)
    (bye,) = sent(e)
    assert bye.method == b"BYE"
    assert bye.cseq_num == 2
    answer(e, bye, 200, 2.07)
    assert totals(e) == (1, 0, {})
    assert e.finished
    (done,) = [s for _, s in e.reports if s.calls_successful]
    hist = done.histogram("setup_200")
    assert hist is not None
    assert 39_900 <= hist.get_max_value() <= 40_100
    # Answered 50 ms into second 0: its 10 ms slot (bit 5) is marked there and only there.
    assert [(sec, s.answered_slots) for sec, s in e.reports if s.answered_slots] == [(0, 1 << 5)]


def test_busy_callee_fails_the_call_with_486_and_is_acked_on_the_invite_branch() -> None:
    e = engine()
    e.advance(0.01)
    (invite,) = sent(e)
    answer(e, invite, 486, 0.02)
    (ack,) = sent(e)
    assert ack.method == b"ACK"
    assert ack.vias == invite.vias
    assert totals(e) == (0, 1, {"486": 1})
    # A retransmitted 486 is ACKed again while Timer D runs.
    answer(e, invite, 486, 0.5)
    assert [m.method for m in sent(e)] == [b"ACK"]


def test_silent_target_fails_with_timeout_after_timer_b_with_timer_a_retransmissions() -> None:
    e = engine(t1=0.1)
    t = 0.0
    retransmits = 0
    while t < 7.0:
        t += 0.01
        e.advance(t)
        msgs = sent(e)
        if t > 0.02:
            retransmits += len(msgs)
        if e.finished:
            break
    # Timer B = 64*T1 = 6.4 s; Timer A fires at T1, 3, 7, 15, 31, 63 T1 (doubling): 6 times.
    assert 6.4 <= t < 6.5
    assert retransmits == 6
    assert totals(e) == (0, 1, {"timeout": 1})


def _run_until_finished(e: UacEngine, limit: float) -> float:
    t = 0.0
    while t < limit and not e.finished:
        t += 0.01
        e.advance(t)
        sent(e)
    return t


def test_recv_timeout_fails_a_silent_call_before_timer_b() -> None:
    e = engine(recv_timeout=2.0)  # T1 0.5 s: Timer B would be 32 s
    t = _run_until_finished(e, 40.0)
    assert 2.0 <= t < 2.1
    assert totals(e) == (0, 1, {"timeout": 1})


def test_recv_timeout_cancels_a_call_still_ringing() -> None:
    e = engine(recv_timeout=2.0)
    e.advance(0.01)
    (invite,) = sent(e)
    answer(e, invite, 180, 0.02)
    t = 0.02
    while t < 2.5:
        t += 0.01
        e.advance(t)
        msgs = sent(e)
        if msgs:
            assert [m.method for m in msgs] == [b"CANCEL"]
            break
    assert 2.0 <= t < 2.1
    answer(e, invite, 487, t + 0.01)
    assert totals(e) == (0, 1, {"timeout": 1})


def test_recv_timeout_fails_an_unanswered_bye_before_timer_f() -> None:
    e = engine(recv_timeout=3.0)
    e.advance(0.01)
    (invite,) = sent(e)
    answer(e, invite, 200, 0.02, extra=b"Contact: <sip:callee@127.0.0.1:5060>")
    t = _run_until_finished(e, 40.0)
    assert 3.02 <= t < 3.2  # hold 0: BYE at once, unanswered for 3 s
    assert totals(e) == (0, 1, {"bye-failed": 1})


def test_unanswered_bye_fails_the_call_with_bye_failed() -> None:
    e = engine(t1=0.05, hold=0.1)
    e.advance(0.01)
    (invite,) = sent(e)
    answer(e, invite, 200, 0.02, extra=b"Contact: <sip:c@127.0.0.1:5060>")
    t = 0.02
    while not e.finished and t < 10:
        t += 0.01
        e.advance(t)
    assert 0.12 + 3.2 <= t < 0.12 + 3.3  # Timer F = 64*T1 after the BYE
    assert totals(e) == (0, 1, {"bye-failed": 1})


@pytest.mark.parametrize("code", [401, 407])
def test_digest_challenge_is_answered_once_with_credentials(code: int) -> None:
    users = UserRange(prefix="u", first=1, count=1, domain="example.com", password="pw")
    e = engine(users=users)
    e.advance(0.01)
    (invite,) = sent(e)
    verifier = DigestVerifier(NonceAuthority(b"k" * 32), "example.com")
    name = "WWW-Authenticate" if code == 401 else "Proxy-Authenticate"
    challenge = str(verifier.challenge(now=0.0, salt=b"s"))
    answer(e, invite, code, 0.02, extra=f"{name}: {challenge}".encode())
    _raw_ack, raw_again = e.out
    ack, again = sent(e)
    assert ack.method == b"ACK"
    assert again.method == b"INVITE"
    assert again.cseq_num == 2
    header = b"authorization" if code == 401 else b"proxy-authorization"
    raw = next(line for line in raw_again.split(b"\r\n")
               if line.lower().startswith(header + b":"))
    assert b'username="u1"' in raw
    assert b"response=" in raw
    # A second challenge is not answered again: the call fails with that status.
    answer(e, again, code, 0.03, extra=f"{name}: {challenge}".encode())
    assert totals(e) == (0, 1, {str(code): 1})

