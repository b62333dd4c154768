"""A UAC engine calling a UAS engine in memory, on virtual time, through a network that loses
and delays datagrams: the tables' retransmissions (Timer A, E, the 2xx until the ACK, the ACK
again for a retransmitted 2xx, the BYE answered from the ended-call memory) recover every
call, and both sides count each call once, the same way."""

from __future__ import annotations

import heapq
import random
from itertools import count

import pytest

from sipha.loadtest.options import AnswerMix, ScenarioOptions
from sipha.loadtest.stats import IntervalStats
from sipha.loadtest.uac import UacEngine
from sipha.loadtest.uas import UasEngine
from tests.loadtest.helpers import make_plan

UAC_ADDR = ("127.0.0.1", 5070)
UAS_ADDR = ("127.0.0.1", 5080)


def run(loss: float, mix: AnswerMix, calls: int = 150, seed: int = 3) -> tuple[
    IntervalStats, IntervalStats, UacEngine, UasEngine
]:
    plan = make_plan(5080, rate=50.0, max_calls=calls, duration=None, hold=0.2, t1=0.05,
                     ring_timeout=1.0)
    uac = UacEngine(plan, plan.options, local_host="127.0.0.1", local_port=5070, t0=0.0,
                    rng=random.Random(seed))
    uas = UasEngine(ScenarioOptions(mix=mix, ring_time=0.1, ring_timeout=30.0, t1=0.05),
                    transport="udp", local_host="127.0.0.1", local_port=5080, t0=0.0,
                    rng=random.Random(seed + 1))
    net = random.Random(seed + 2)
    wire: list[tuple[float, int, bool, bytes]] = []  # (arrival, seq, to_uas, data)
    seq = count()
    t = 0.0
    while t < 60.0 and not (uac.finished and uas.idle and not wire):
        t = round(t + 0.005, 3)
        while wire and wire[0][0] <= t:
            at, _, to_uas, data = heapq.heappop(wire)
            if to_uas:
                uas.on_message(data, UAC_ADDR, at)
            else:
                uac.on_message(data, UAS_ADDR, at)
        uac.advance(t)
        uas.advance(t)
        sent = [(True, d) for d in uac.out] + [(False, d) for d, _ in uas.replies]
        uac.out.clear()
        uas.replies.clear()
        uac.replies.clear()
        for to_uas, data in sent:
            if net.random() >= loss:
                heapq.heappush(wire, (t + net.uniform(0.001, 0.02), next(seq), to_uas, data))
    assert uac.finished, "the run did not finish"
    uac.flush_partial_second()
    uas.flush_partial_second()
    return _total(uac), _total(uas), uac, uas


def _total(e: UacEngine | UasEngine) -> IntervalStats:
    total = IntervalStats()
    for _, s in e.reports:
        total.calls_attempted += s.calls_attempted
        total.calls_successful += s.calls_successful
        total.calls_failed += s.calls_failed
        total.retransmissions += s.retransmissions
        for k, n in s.failed_by_reason.items():
            total.failed_by_reason[k] = total.failed_by_reason.get(k, 0) + n
    return total


@pytest.mark.parametrize("loss", [0.0, 0.15])
def test_every_answered_call_succeeds_on_both_sides_despite_loss(loss: float) -> None:
    caller, callee, uac, uas = run(loss, AnswerMix(answer=1.0))
    assert (caller.calls_attempted, caller.calls_successful, caller.calls_failed) == (150, 150, 0)
    assert (callee.calls_attempted, callee.calls_successful, callee.calls_failed) == (150, 150, 0)
    assert uac.active == 0
    assert uas.active == 0
    if loss:
        assert caller.retransmissions > 0
        assert callee.retransmissions > 0
    else:
        assert caller.retransmissions == callee.retransmissions == 0


def test_a_mix_of_answers_is_counted_alike_on_both_sides() -> None:
    caller, callee, _, _ = run(0.1, AnswerMix(answer=0.5, busy=0.3, no_answer=0.2))
    assert caller.calls_attempted == callee.calls_attempted == 150
    assert caller.calls_successful == callee.calls_successful > 0
    # Busy: the caller fails with the callee's 486.  No answer: the caller's ring timeout
    # CANCELs (counted as its timeout), the callee ends the INVITE with 487.
    assert caller.failed_by_reason["486"] == callee.failed_by_reason["486"] > 0
    assert caller.failed_by_reason["timeout"] == callee.failed_by_reason["487"] > 0
    assert caller.calls_failed == callee.calls_failed
