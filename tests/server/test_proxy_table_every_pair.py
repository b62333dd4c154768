"""The proxy's tables, pair by pair: every (call phase, input) is driven through a real
`ProxyCore` and what it sends is checked against the answer written down here.

The written answers are the documentation of `sipha.server.proxy_rules` in test form, kept
apart from the table on purpose. The call forks to three contacts: b0 rings (180), b1 (the
branch that answers the input) and b2 are silent. For LAST_FINAL and LATE_FINAL, b0 and b2
have their finals already (b0 486, or 200 in ACCEPTED; b2 486), so b1 is the last open branch.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.server.proxy_rules import (
    BRANCH_TABLE,
    CALL_TABLE,
    BranchInput,
    BranchPhase,
    CallInput,
    CallPhase,
    Do,
)
from sipha.sip.transaction import TerminationReason
from tests.server.proxy_harness import TIMER_C, ProxyHarness

_P = CallPhase
_I = CallInput
_LAST = (_I.LAST_FINAL, _I.LATE_FINAL)

# (phase, input) -> (labels sent, next phase)
ANSWERS: dict[tuple[CallPhase, CallInput], tuple[set[str], CallPhase]] = {
    (_P.LOCATING, _I.LOCATED): ({"INVITE>b0", "INVITE>b1", "INVITE>b2"}, _P.PROCEEDING),
    (_P.LOCATING, _I.NOT_LOCATED): ({"500>uac"}, _P.COMPLETED),
    (_P.LOCATING, _I.CANCEL): ({"487>uac"}, _P.COMPLETED),
    (_P.LOCATING, _I.TIMER_C): ({"408>uac"}, _P.COMPLETED),

    (_P.PROCEEDING, _I.LOCATED): (set(), _P.PROCEEDING),
    (_P.PROCEEDING, _I.NOT_LOCATED): (set(), _P.PROCEEDING),
    (_P.PROCEEDING, _I.RESPONSE_100): (set(), _P.PROCEEDING),
    (_P.PROCEEDING, _I.RESPONSE_1XX): ({"180>uac"}, _P.PROCEEDING),
    (_P.PROCEEDING, _I.RESPONSE_2XX): ({"200>uac", "CANCEL>b0"}, _P.ACCEPTED),
    (_P.PROCEEDING, _I.RESPONSE_FINAL): (set(), _P.PROCEEDING),
    (_P.PROCEEDING, _I.RESPONSE_6XX): ({"CANCEL>b0"}, _P.PROCEEDING),
    (_P.PROCEEDING, _I.LAST_FINAL): ({"480>uac"}, _P.COMPLETED),  # the best of 486 486 480
    (_P.PROCEEDING, _I.LATE_FINAL): (set(), _P.PROCEEDING),
    (_P.PROCEEDING, _I.CANCEL): ({"CANCEL>b0"}, _P.CANCELLED),
    (_P.PROCEEDING, _I.TIMER_C): ({"CANCEL>b0", "408>uac"}, _P.COMPLETED),

    # b0 got its CANCEL when the caller's came; b1 and b2 get theirs on their first 1xx.
    (_P.CANCELLED, _I.LOCATED): (set(), _P.CANCELLED),
    (_P.CANCELLED, _I.NOT_LOCATED): (set(), _P.CANCELLED),
    (_P.CANCELLED, _I.RESPONSE_100): ({"CANCEL>b1"}, _P.CANCELLED),
    (_P.CANCELLED, _I.RESPONSE_1XX): ({"CANCEL>b1", "180>uac"}, _P.CANCELLED),
    (_P.CANCELLED, _I.RESPONSE_2XX): ({"200>uac"}, _P.ACCEPTED),
    (_P.CANCELLED, _I.RESPONSE_FINAL): (set(), _P.CANCELLED),
    (_P.CANCELLED, _I.RESPONSE_6XX): (set(), _P.CANCELLED),
    (_P.CANCELLED, _I.LAST_FINAL): ({"487>uac"}, _P.COMPLETED),
    (_P.CANCELLED, _I.LATE_FINAL): (set(), _P.CANCELLED),
    (_P.CANCELLED, _I.CANCEL): (set(), _P.CANCELLED),
    (_P.CANCELLED, _I.TIMER_C): ({"487>uac"}, _P.COMPLETED),

    # b0 won with a 200; b1 and b2 are to be CANCELled on their first provisional.
    (_P.ACCEPTED, _I.LOCATED): (set(), _P.ACCEPTED),
    (_P.ACCEPTED, _I.NOT_LOCATED): (set(), _P.ACCEPTED),
    (_P.ACCEPTED, _I.RESPONSE_100): ({"CANCEL>b1"}, _P.ACCEPTED),
    (_P.ACCEPTED, _I.RESPONSE_1XX): ({"CANCEL>b1"}, _P.ACCEPTED),
    (_P.ACCEPTED, _I.RESPONSE_2XX): ({"200>uac"}, _P.ACCEPTED),
    (_P.ACCEPTED, _I.RESPONSE_FINAL): (set(), _P.ACCEPTED),
    (_P.ACCEPTED, _I.RESPONSE_6XX): (set(), _P.ACCEPTED),
    (_P.ACCEPTED, _I.LAST_FINAL): (set(), _P.ACCEPTED),
    (_P.ACCEPTED, _I.LATE_FINAL): (set(), _P.ACCEPTED),
    (_P.ACCEPTED, _I.CANCEL): (set(), _P.ACCEPTED),
    (_P.ACCEPTED, _I.TIMER_C): (set(), _P.ACCEPTED),

    # Timer C fired: 408 went up, b0 got its CANCEL, b1 and b2 count as 408 but still get
    # a CANCEL on a late provisional; a late 2xx still goes up (the caller BYEs it).
    (_P.COMPLETED, _I.LOCATED): (set(), _P.COMPLETED),
    (_P.COMPLETED, _I.NOT_LOCATED): (set(), _P.COMPLETED),
    (_P.COMPLETED, _I.RESPONSE_100): ({"CANCEL>b1"}, _P.COMPLETED),
    (_P.COMPLETED, _I.RESPONSE_1XX): ({"CANCEL>b1"}, _P.COMPLETED),
    (_P.COMPLETED, _I.RESPONSE_2XX): ({"200>uac"}, _P.COMPLETED),
    (_P.COMPLETED, _I.LATE_FINAL): (set(), _P.COMPLETED),
    (_P.COMPLETED, _I.CANCEL): (set(), _P.COMPLETED),
    (_P.COMPLETED, _I.TIMER_C): (set(), _P.COMPLETED),
}

# Pairs no sequence of events can reach (no branch while LOCATING; every branch has its final
# in COMPLETED): their documented answer is in the table itself, checked below.
UNREACHABLE = {
    *((_P.LOCATING, i) for i in (_I.RESPONSE_100, _I.RESPONSE_1XX, _I.RESPONSE_2XX,
                                 _I.RESPONSE_FINAL, _I.RESPONSE_6XX, _I.LAST_FINAL,
                                 _I.LATE_FINAL)),
    *((_P.COMPLETED, i) for i in (_I.RESPONSE_FINAL, _I.RESPONSE_6XX, _I.LAST_FINAL)),
}


def bench(phase: CallPhase, *, last: bool) -> ProxyHarness:
    h = ProxyHarness()
    h.start(0.0)
    if phase is _P.LOCATING:
        return h
    h.locate(3, 0.0)
    h.answer(0, 180, 0.1)
    if last:
        h.answer(2, 486, 0.2)
        h.answer(0, 200 if phase is _P.ACCEPTED else 486, 0.3)
    if phase is _P.CANCELLED:
        h.cancel(0.4)
    elif phase is _P.ACCEPTED and not last:
        h.answer(0, 200, 0.4)
    elif phase is _P.COMPLETED:
        h.timer(0.1 + TIMER_C)
    assert h.call.phase is phase
    return h


STATUS = {_I.RESPONSE_100: 100, _I.RESPONSE_1XX: 180, _I.RESPONSE_2XX: 200,
          _I.RESPONSE_FINAL: 486, _I.RESPONSE_6XX: 603, _I.LAST_FINAL: 480}


def feed(h: ProxyHarness, i: CallInput) -> set[str]:
    now = 1.0
    if i in STATUS:
        return h.answer(1, STATUS[i], now)
    if i is _I.LATE_FINAL:
        return h.answer(2, 500, now)
    if i is _I.LOCATED:
        return h.locate(3, now)
    if i is _I.NOT_LOCATED:
        return h.run(h.core.on_not_located(h.call, 500, now))
    if i is _I.CANCEL:
        return h.cancel(now)
    return h.timer(1000.0)  # TIMER_C: past every deadline


@pytest.mark.parametrize(("phase", "event"), sorted(ANSWERS, key=lambda p: (p[0].value,
                                                                           p[1].value)))
def test_every_reachable_pair_does_what_the_documentation_says(
    phase: CallPhase, event: CallInput
) -> None:
    h = bench(phase, last=event in _LAST)
    labels, nxt = ANSWERS[(phase, event)]
    assert feed(h, event) == labels
    assert h.call.phase is nxt
    assert CALL_TABLE[(phase, event)].next_phase is nxt
    assert (h.txn in h.core.pending) == (nxt in (_P.LOCATING, _P.PROCEEDING, _P.CANCELLED))


def test_every_pair_is_documented_or_unreachable_and_unreachable_ones_change_nothing() -> None:
    pairs = {(p, i) for p in CallPhase for i in CallInput}
    assert set(ANSWERS) | UNREACHABLE == pairs
    assert not set(ANSWERS) & UNREACHABLE
    for phase, i in UNREACHABLE:
        rule = CALL_TABLE[(phase, i)]
        assert rule.next_phase is phase
        assert set(rule.actions) <= {Do.BRANCH_FINAL}  # no branch to act on, nothing sent


def test_timer_c_is_reset_by_a_provisional_but_not_by_a_100() -> None:
    h = bench(_P.PROCEEDING, last=False)
    assert h.core.next_deadline() == pytest.approx(0.1 + TIMER_C)  # b0's 180 at 0.1
    h.answer(1, 100, 5.0)
    assert h.core.next_deadline() == pytest.approx(0.1 + TIMER_C)
    h.answer(1, 183, 5.0)
    assert h.core.next_deadline() == pytest.approx(5.0 + TIMER_C)


B = BranchPhase
BI = BranchInput
BRANCH_ANSWERS: dict[tuple[BranchPhase, BranchInput], tuple[bool, BranchPhase]] = {
    (B.CALLING, BI.PROVISIONAL): (False, B.PROCEEDING),
    (B.CALLING, BI.CANCEL): (False, B.CANCEL_WANTED),  # RFC 3261 §9.1: not before a 1xx
    (B.CALLING, BI.FINAL): (False, B.COMPLETED),
    (B.PROCEEDING, BI.PROVISIONAL): (False, B.PROCEEDING),
    (B.PROCEEDING, BI.CANCEL): (True, B.CANCELLED),
    (B.PROCEEDING, BI.FINAL): (False, B.COMPLETED),
    (B.CANCEL_WANTED, BI.PROVISIONAL): (True, B.CANCELLED),
    (B.CANCEL_WANTED, BI.CANCEL): (False, B.CANCEL_WANTED),
    (B.CANCEL_WANTED, BI.FINAL): (False, B.COMPLETED),
    (B.CANCELLED, BI.PROVISIONAL): (False, B.CANCELLED),
    (B.CANCELLED, BI.CANCEL): (False, B.CANCELLED),
    (B.CANCELLED, BI.FINAL): (False, B.COMPLETED),
    (B.COMPLETED, BI.PROVISIONAL): (False, B.COMPLETED),
    (B.COMPLETED, BI.CANCEL): (False, B.COMPLETED),
    (B.COMPLETED, BI.FINAL): (False, B.COMPLETED),
}


@pytest.mark.parametrize(("phase", "event"), list(BRANCH_ANSWERS))
def test_every_branch_pair_does_what_the_documentation_says(
    phase: BranchPhase, event: BranchInput
) -> None:
    rule = BRANCH_TABLE[(phase, event)]
    assert (rule.send_cancel, rule.next_phase) == BRANCH_ANSWERS[(phase, event)]
    assert len(BRANCH_TABLE) == len(BRANCH_ANSWERS) == len(BranchPhase) * len(BranchInput)


# --- any sequence: the caller gets at most one non-2xx final, never after a 2xx --------------
EVENTS = st.one_of(
    st.tuples(st.just("answer"), st.integers(0, 2),
              st.sampled_from([100, 180, 183, 200, 404, 486, 487, 503, 603])),
    st.tuples(st.just("end"), st.integers(0, 2), st.sampled_from(list(TerminationReason))),
    st.tuples(st.just("cancel"), st.just(0), st.just(0)),
    st.tuples(st.just("timer"), st.just(0), st.just(0)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(EVENTS, max_size=12), st.booleans())
def test_any_sequence_keeps_the_rfc_3261_16_7_promises(
    events: list[tuple[str, int, object]], invite: bool
) -> None:
    h = ProxyHarness("INVITE" if invite else "MESSAGE")
    h.fork(3, 0.0)
    now = 0.0
    for kind, i, arg in events:
        now += 1.0
        if kind == "answer":
            assert isinstance(arg, int)
            h.answer(i, arg, now)
        elif kind == "end":
            assert isinstance(arg, TerminationReason)
            h.end(i, arg, now)
        elif kind == "cancel":
            h.cancel(now)
        else:
            h.timer(now + TIMER_C)
            now += TIMER_C
    call = h.call
    up = [s for s in h.upstream() if s != 100]
    finals = [s for s in up if s >= 300]
    assert len(finals) <= 1
    if finals:
        assert not any(200 <= s < 300 for s in up[: up.index(finals[0])])
    assert call.open_branches == sum(b.final is None for b in call.branches)
    assert (h.txn in h.core.pending) == (call.phase in (_P.PROCEEDING, _P.CANCELLED))
    if call.phase is _P.COMPLETED:
        assert finals
    if not invite:
        assert not any(type(a).__name__ == "SendCancel" for a in h.sent)
