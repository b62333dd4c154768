"""The UAS engine on virtual time: answer, busy, no answer + CANCEL, BYE, OPTIONS."""

from __future__ import annotations

import random

from sipha.loadtest.messages import MessageBuilder
from sipha.loadtest.options import AnswerMix, ScenarioOptions
from sipha.loadtest.uas import UasEngine
from sipha.loadtest.wire import Scan, scan

CALLER = MessageBuilder(local_host="127.0.0.1", local_port=5070, transport="udp",
                        target="127.0.0.1:5080", domain="127.0.0.1")
PEER = ("127.0.0.1", 5070)


def uas(mix: AnswerMix, ring: float = 0.0, t1: float = 0.5) -> UasEngine:
    opts = ScenarioOptions(mix=mix, ring_time=ring, t1=t1, ring_timeout=5.0)
    return UasEngine(opts, transport="udp", local_host="127.0.0.1", local_port=5080, t0=0.0,
                     rng=random.Random(5))


def request(method: str, n: int, cseq: int = 1, to_tag: str = "") -> bytes:
    to = "<sip:service@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    return CALLER.request(method, "sip:service@127.0.0.1:5080", branch=f"z9hG4bK{n}{method}",
                          from_=f"<sip:a@127.0.0.1>;tag=f{n}", to=to, call_id=f"c{n}",
                          cseq=cseq)


def replies(e: UasEngine) -> list[Scan]:
    out = [scan(d) for d, _ in e.replies]
    e.replies.clear()
    return out


def test_answered_call_rings_answers_and_ends_on_bye() -> None:
    e = uas(AnswerMix(answer=1.0), ring=1.0)
    e.on_message(request("INVITE", 1), PEER, 0.0)
    (ringing,) = replies(e)
    assert ringing.status == 180
    assert ringing.to_tag
    e.advance(1.01)
    (ok,) = replies(e)
    assert ok.status == 200
    assert ok.body.startswith(b"v=0")
    assert ok.to_tag == ringing.to_tag
    e.on_message(request("ACK", 1, to_tag=ok.to_tag.decode()), PEER, 1.02)
    e.advance(5.0)
    assert replies(e) == []  # ACKed: no 2xx retransmission
    e.on_message(request("BYE", 1, cseq=2, to_tag=ok.to_tag.decode()), PEER, 5.0)
    (bye_ok,) = replies(e)
    assert bye_ok.status == 200
    assert bye_ok.cseq_method == b"BYE"
    e.flush_partial_second()
    assert sum(s.calls_successful for _, s in e.reports) == 1
    assert e.idle


def test_unacked_2xx_is_retransmitted_with_doubling_up_to_t2() -> None:
    e = uas(AnswerMix(answer=1.0), t1=0.5)
    e.on_message(request("INVITE", 2), PEER, 0.0)
    replies(e)
    times = []
    t = 0.0
    for i in range(1, 800):
        t = i * 0.05
        e.advance(t)
        if replies(e):
            times.append(round(t, 2))
    # RFC 3261 §13.3.1.4: T1, 2T1, 4T1 ... capped at T2 = 4 s, given up at 64*T1 = 32 s.
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    expected = [0.5, 1.0, 2.0] + [4.0] * (len(gaps) - 3)
    assert len(gaps) >= 6
    assert all(abs(g - x) <= 0.051 for g, x in zip(gaps, expected, strict=True))
    assert times[-1] < 32
    e.flush_partial_second()
    assert {k for _, s in e.reports for k in s.failed_by_reason} == {"timeout"}


def test_busy_share_is_rejected_with_the_busy_code() -> None:
    e = uas(AnswerMix(answer=0.0, busy=1.0, busy_code=600))
    e.on_message(request("INVITE", 3), PEER, 0.0)
    ringing, busy = replies(e)
    assert (ringing.status, busy.status) == (180, 600)
    e.on_message(request("ACK", 3, to_tag=busy.to_tag.decode()), PEER, 0.1)
    assert e.idle


def test_no_answer_rings_until_cancel_then_487() -> None:
    e = uas(AnswerMix(answer=0.0, no_answer=1.0))
    e.on_message(request("INVITE", 4), PEER, 0.0)
    assert [r.status for r in replies(e)] == [180]
    e.advance(2.0)
    assert replies(e) == []
    e.on_message(request("CANCEL", 4), PEER, 2.0)
    cancel_ok, terminated = replies(e)
    assert (cancel_ok.status, cancel_ok.cseq_method) == (200, b"CANCEL")
    assert (terminated.status, terminated.cseq_method) == (487, b"INVITE")


def test_mix_shares_are_drawn_from_the_seeded_rng() -> None:
    e = uas(AnswerMix(answer=0.5, busy=0.5))
    finals = []
    for n in range(400):
        e.on_message(request("INVITE", 100 + n), PEER, 0.0)
        finals.append(replies(e)[-1].status)
    assert 160 <= finals.count(200) <= 240
    assert finals.count(200) + finals.count(486) == 400


def test_options_gets_200_and_unknown_methods_501() -> None:
    e = uas(AnswerMix())
    e.on_message(request("OPTIONS", 5), PEER, 0.0)
    e.on_message(request("SUBSCRIBE", 6), PEER, 0.0)
    assert [r.status for r in replies(e)] == [200, 501]
