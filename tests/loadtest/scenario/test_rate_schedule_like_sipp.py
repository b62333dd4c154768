"""SIPp's rate options as a schedule: -r/-rp, -rate_increase/-rate_interval/-rate_max and
-no_rate_quit, checked on exact counts of calls due."""

from __future__ import annotations

import pytest

from sipha.loadtest.scenario.schedule import RateSchedule


def test_constant_rate_and_rate_period() -> None:
    s = RateSchedule(rate=10)
    assert [s.due(t) for t in (0.0, 0.05, 0.1, 0.99, 1.0, 10.0)] == [1, 1, 2, 10, 11, 101]
    rp = RateSchedule(rate=5, period=2.0)  # SIPp -r 5 -rp 2000: 5 calls every 2 s
    assert rp.due(2.0) == 6
    assert rp.rate_at(1.0) == 2.5
    assert s.quit_after() is None


def test_rate_steps_up_every_interval_and_quits_past_the_max() -> None:
    s = RateSchedule(rate=10, increase=10, interval=2.0, rate_max=30)
    assert [s.rate_at(t) for t in (0, 1.9, 2.0, 4.0, 6.0, 8.0)] == [10, 10, 20, 30, 30, 30]
    # 2 s at 10/s, 2 s at 20/s, 2 s at 30/s = 120 calls, then the step to 40 passes the max.
    assert s.quit_after() == 6.0
    assert s.due(6.0 - 1e-6) == 120
    assert s.due(4.0) == 61


def test_no_rate_quit_keeps_the_max() -> None:
    s = RateSchedule(rate=10, increase=15, interval=1.0, rate_max=30, quit_at_max=False)
    assert [s.rate_at(t) for t in (0, 1, 2, 3)] == [10, 25, 30, 30]
    assert s.quit_after() is None
    assert RateSchedule(rate=10, increase=15, interval=1.0, rate_max=30).quit_after() == 2.0


def test_bad_schedules_are_refused() -> None:
    with pytest.raises(ValueError, match="period > 0"):
        RateSchedule(rate=10, period=0)


def test_default_behaviors_parse_as_sipp() -> None:
    from sipha.loadtest.scenario.context import parse_behaviors

    assert parse_behaviors("all") == {"bye", "abortunexp", "pingreply"}
    assert parse_behaviors("none") == frozenset()
    assert parse_behaviors("all,-bye") == {"abortunexp", "pingreply"}
    assert parse_behaviors("bye,pingreply") == {"bye", "pingreply"}
    assert parse_behaviors("-pingreply") == {"bye", "abortunexp"}
    with pytest.raises(ValueError, match="unknown default behaviour 'hug'"):
        parse_behaviors("hug")
