"""Calls still in progress when the drain timeout ends a run are counted failed
(``drain-timeout``), so attempted = successful + failed always holds."""

from __future__ import annotations

import random

from sipha.loadtest.messages import MessageBuilder
from sipha.loadtest.stats import FailureReason, IntervalStats, reason_key
from sipha.loadtest.uac import UacEngine
from sipha.loadtest.wire import scan
from tests.loadtest.helpers import make_plan

PEER = ("127.0.0.1", 5060)
CALLEE = MessageBuilder(local_host="127.0.0.1", local_port=5060, transport="udp",
                        target="127.0.0.1:5555", domain="127.0.0.1")


def _engine(scenario: str = "call", calls: int = 4) -> UacEngine:
    plan = make_plan(5060, scenario=scenario, rate=10.0, max_calls=calls, duration=None,
                     hold=30.0)
    return UacEngine(plan, plan.options, local_host="127.0.0.1", local_port=5555, t0=0.0,
                     rng=random.Random(3))


def _totals(e: UacEngine) -> IntervalStats:
    e.flush_partial_second()
    total = IntervalStats()
    for _, s in e.reports:
        total.merge(s)
    return total


def test_calls_in_every_state_are_counted_once_as_drain_timeout() -> None:
    e = _engine(calls=4)
    e.advance(0.45)  # four INVITEs sent
    invites = [scan(d) for d in e.out]
    e.out.clear()
    assert len(invites) == 4
    # One answered and holding, one busy (counted, lingering for Timer D), two still calling.
    e.on_message(CALLEE.response(invites[0], 200, "OK", to_tag=b"c",
                                 extra=b"Contact: <sip:c@127.0.0.1:5060>"), PEER, 0.5)
    e.on_message(CALLEE.response(invites[1], 486, "Busy", to_tag=b"c"), PEER, 0.5)
    assert e.stopped
    assert not e.finished
    assert e.abandon(1.0) == 3
    assert e.finished
    e.advance(100.0)  # no timer of an abandoned call fires into the stats afterwards
    t = _totals(e)
    assert (t.calls_attempted, t.calls_successful, t.calls_failed) == (4, 0, 4)
    assert t.failed_by_reason == {"486": 1, "drain-timeout": 3}


def test_transactions_in_progress_are_drain_timeouts_too() -> None:
    e = _engine(scenario="options", calls=2)
    e.advance(0.3)
    assert e.abandon(0.4) == 2
    t = _totals(e)
    assert t.calls_attempted == t.calls_failed == 2
    assert t.failed_by_reason == {"drain-timeout": 2}


def test_the_key_is_part_of_the_vocabulary() -> None:
    assert reason_key("drain-timeout") == FailureReason.DRAIN_TIMEOUT.value
