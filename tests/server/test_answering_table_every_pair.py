"""The answering service's table, pair by pair: every (phase, input) is driven through a real
`AnsweringCore` and what it does is checked against the answer written down here.

Timer inputs exist only where their timer runs (the ring timer while ringing or alerting, the
retransmission timer until the ACK on UDP, the hold timer once answered); the other timer
pairs cannot occur, and their documented answer (drop, phase unchanged) is checked on the
table itself.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.server.answering_rules import ANSWER_TABLE, AnswerInput, AnswerPhase
from tests.server.answering_harness import UAC, UAC_TCP, AnsweringHarness, answer, ring

_P = AnswerPhase
_I = AnswerInput
_TIMERS = (_I.RING_TIMEOUT, _I.ANSWER_TIME, _I.RETRANSMIT, _I.ACK_TIMEOUT, _I.HOLD_EXPIRED)
_BYE = {"200>bye", "delete"}
_HANG_UP = {"BYE>uac", "delete"}

ANSWERS: dict[tuple[AnswerPhase, AnswerInput], tuple[set[str], AnswerPhase]] = {
    (_P.RINGING, _I.RING_TIMEOUT): ({"480>uac"}, _P.ENDED),
    (_P.RINGING, _I.STORED): (set(), _P.RINGING),
    (_P.RINGING, _I.ACK): (set(), _P.RINGING),
    (_P.RINGING, _I.CANCEL): ({"487>uac"}, _P.ENDED),
    (_P.RINGING, _I.BYE): ({"487>uac", *_BYE}, _P.ENDED),  # the early dialog ends (§15)

    (_P.ALERTING, _I.ANSWER_TIME): ({"store"}, _P.STORING),
    (_P.ALERTING, _I.STORED): (set(), _P.ALERTING),
    (_P.ALERTING, _I.ACK): (set(), _P.ALERTING),
    (_P.ALERTING, _I.CANCEL): ({"487>uac"}, _P.ENDED),
    (_P.ALERTING, _I.BYE): ({"487>uac", *_BYE}, _P.ENDED),

    (_P.STORING, _I.STORED): ({"200>uac"}, _P.ANSWERED),
    (_P.STORING, _I.ACK): (set(), _P.STORING),
    (_P.STORING, _I.CANCEL): ({"487>uac"}, _P.ABANDONED),
    (_P.STORING, _I.BYE): ({"487>uac", "200>bye"}, _P.ABANDONED),

    (_P.ABANDONED, _I.STORED): ({"delete"}, _P.ENDED),  # written after all: take it back
    (_P.ABANDONED, _I.ACK): (set(), _P.ABANDONED),
    (_P.ABANDONED, _I.CANCEL): (set(), _P.ABANDONED),
    (_P.ABANDONED, _I.BYE): (set(), _P.ABANDONED),  # forgotten here: the store answers it

    (_P.ANSWERED, _I.RETRANSMIT): ({"200+>uac"}, _P.ANSWERED),
    (_P.ANSWERED, _I.ACK_TIMEOUT): (_HANG_UP, _P.ENDED),
    (_P.ANSWERED, _I.HOLD_EXPIRED): (_HANG_UP, _P.ENDED),
    (_P.ANSWERED, _I.STORED): (set(), _P.ANSWERED),
    (_P.ANSWERED, _I.ACK): ({"verify"}, _P.CONFIRMED),
    (_P.ANSWERED, _I.CANCEL): (set(), _P.ANSWERED),  # too late
    (_P.ANSWERED, _I.BYE): (_BYE, _P.ENDED),

    (_P.CONFIRMED, _I.HOLD_EXPIRED): (_HANG_UP, _P.ENDED),
    (_P.CONFIRMED, _I.STORED): (set(), _P.CONFIRMED),
    (_P.CONFIRMED, _I.ACK): ({"verify"}, _P.CONFIRMED),
    (_P.CONFIRMED, _I.CANCEL): (set(), _P.CONFIRMED),
    (_P.CONFIRMED, _I.BYE): (_BYE, _P.ENDED),

    (_P.ENDED, _I.STORED): (set(), _P.ENDED),
    (_P.ENDED, _I.ACK): (set(), _P.ENDED),
    (_P.ENDED, _I.CANCEL): (set(), _P.ENDED),
    (_P.ENDED, _I.BYE): (set(), _P.ENDED),
}
UNREACHABLE = {(p, i) for p in AnswerPhase for i in _TIMERS} - set(ANSWERS)

T1_STEPS = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]  # T1 doubling to T2


def bench(phase: AnswerPhase, event: AnswerInput) -> AnsweringHarness:
    h = AnsweringHarness()
    if phase is _P.RINGING:
        h.invite(ring(30.0))
        return h
    if phase is _P.ALERTING:
        h.invite(answer(ring_time=2.0))
        return h
    # The hold pair in ANSWERED over TCP: no retransmission timer to fire first.
    hold = event is _I.HOLD_EXPIRED
    h.invite(answer(max_hold=10.0 if hold else 3600.0), peer=UAC_TCP if hold else UAC)
    if phase is _P.ABANDONED:
        h.cancel(0.1)
    elif phase is not _P.STORING:
        h.stored(0.0)
    if phase is _P.ANSWERED and event is _I.ACK_TIMEOUT:
        for t in T1_STEPS:
            assert h.timer(t) == {"200+>uac"}
    if phase is _P.CONFIRMED:
        h.ack(0.2)
    if phase is _P.ENDED:
        h.bye(0.2)
    assert h.call.phase is phase
    return h


def feed(h: AnsweringHarness, event: AnswerInput) -> set[str]:
    if event is _I.RING_TIMEOUT:
        return h.timer(30.0)
    if event is _I.ANSWER_TIME:
        return h.timer(2.0)
    if event is _I.RETRANSMIT:
        return h.timer(0.5)
    if event is _I.ACK_TIMEOUT:
        return h.timer(35.5)
    if event is _I.HOLD_EXPIRED:
        return h.timer(10.0)
    if event is _I.STORED:
        return h.stored(0.3)
    if event is _I.ACK:
        return h.ack(0.3)
    if event is _I.CANCEL:
        return h.cancel(0.3)
    return h.bye(0.3)


@pytest.mark.parametrize(("phase", "event"), list(ANSWERS))
def test_every_reachable_pair_does_what_the_documentation_says(
    phase: AnswerPhase, event: AnswerInput
) -> None:
    h = bench(phase, event)
    labels, nxt = ANSWERS[(phase, event)]
    assert feed(h, event) == labels
    assert h.call.phase is nxt
    assert ANSWER_TABLE[(phase, event)].next_phase is nxt
    assert (h.call.invite.call_id in h.core.calls) == (nxt not in (_P.ENDED, _P.ABANDONED))


def test_unreachable_pairs_are_timers_that_do_not_run_and_change_nothing() -> None:
    assert set(ANSWERS) | UNREACHABLE == {(p, i) for p in AnswerPhase for i in AnswerInput}
    for phase, event in UNREACHABLE:
        rule = ANSWER_TABLE[(phase, event)]
        assert (rule.actions, rule.next_phase) == ((), phase)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["stored", "ack", "cancel", "bye", "timer"]), max_size=10),
       st.sampled_from(["ring", "answer", "answer-later"]), st.booleans())
def test_any_sequence_gives_the_invite_one_final_and_leaves_no_timer_behind(
    events: list[str], kind: str, udp: bool
) -> None:
    h = AnsweringHarness()
    action = ring(5.0) if kind == "ring" else answer(ring_time=1.0 if kind == "answer-later"
                                                      else 0.0, max_hold=20.0)
    h.invite(action, peer=UAC if udp else UAC_TCP)
    now = 0.0
    for event in events:
        now += 0.7
        if event == "timer":
            deadline = h.core.next_deadline()
            if deadline is not None:
                now = max(now, deadline)
        getattr(h, event)(now)
    finals = [lb for lb in (h.label(a) for a in h.sent) if lb[0] in "2345" and lb.endswith(">uac")
              and not lb.startswith("200+")]
    assert len(finals) <= 1
    ended = h.call.phase in (_P.ENDED, _P.ABANDONED)
    assert (h.call.invite.call_id not in h.core.calls) == ended
    if ended:
        assert not h.call.deadlines
    assert h.core.unanswered == sum(c.ok is None for c in h.core.calls.values())
