"""Takeover times computed from polled dispatcher roles and the faults that hit them."""

from __future__ import annotations

import pytest

from sipha.testbed.roles import RoleTracker


def _takeovers(events: list[object]) -> list[tuple[str, float]]:
    return [(e.detail, e.ms) for e in events if e.kind == "takeover"]  # type: ignore[attr-defined]


def test_first_active_is_not_a_takeover() -> None:
    r = RoleTracker(["d1", "d2"])
    events = r.observe("d1", "active", 0.0) + r.observe("d2", "standby", 0.0)
    assert _takeovers(events) == []
    assert [e.detail for e in events] == ["unknown -> active", "unknown -> standby"]
    assert r.active == "d1"


def test_kill_of_the_active_counts_from_the_fault() -> None:
    r = RoleTracker(["d1", "d2"])
    r.observe("d1", "active", 0.0)
    r.fault("d1", "kill", 5.0)
    events = r.observe("d1", "down", 5.1) + r.observe("d2", "active", 5.3)
    assert _takeovers(events) == [("d1 -> d2", pytest.approx(300.0))]


def test_loss_seen_by_polling_when_no_fault_and_preempt_back() -> None:
    r = RoleTracker(["d1", "d2"])
    r.observe("d1", "active", 0.0)
    r.observe("d1", "down", 4.0)
    events = r.observe("d2", "active", 4.2)
    assert _takeovers(events) == [("d1 -> d2", pytest.approx(200.0))]
    # d1 comes back and preempts: d2 seen standby, then d1 active in the same poll round.
    r.observe("d1", "standby", 9.0)
    events = r.observe("d2", "standby", 10.0) + r.observe("d1", "active", 10.0)
    assert _takeovers(events) == [("d2 -> d1", 0.0)]


def test_a_blip_of_the_active_does_not_start_the_clock() -> None:
    r = RoleTracker(["d1", "d2"])
    r.observe("d1", "active", 0.0)
    r.observe("d1", "unknown", 1.0)  # one slow poll
    r.observe("d1", "active", 1.1)
    r.fault("d1", "kill", 8.0)
    assert _takeovers(r.observe("d2", "active", 8.25)) == [("d1 -> d2", pytest.approx(250.0))]


def test_faults_on_the_standby_do_not_count() -> None:
    r = RoleTracker(["d1", "d2"])
    r.observe("d1", "active", 0.0)
    r.fault("d2", "kill", 1.0)
    r.fault("d1", "cont", 2.0)
    r.observe("d1", "down", 3.0)
    assert _takeovers(r.observe("d2", "active", 3.5)) == [("d1 -> d2", pytest.approx(500.0))]


def test_reported_figure_replaces_the_polled_one() -> None:
    r = RoleTracker(["d1", "d2"], wait_reported=2.0)
    r.observe("d1", "active", 0.0)
    assert r.reported("d1", 11, [None], 0.0) == []  # the start: nothing held
    r.fault("d1", "kill", 5.0)
    assert _takeovers(r.observe("d2", "active", 5.4)) == []  # held for d2's own figure
    assert r.reported("d2", 22, [], 5.4) == []
    assert r.expire(5.5) == []
    events = r.reported("d2", 22, [312.5], 5.6)
    assert _takeovers(events) == [("d1 -> d2 (reported; polled 400 ms)", 312.5)]
    assert events[0].t == 5.4


def test_no_report_falls_back_to_polling_and_restarts_start_over() -> None:
    r = RoleTracker(["d1", "d2"], wait_reported=2.0)
    r.observe("d1", "active", 0.0)
    r.reported("d1", 11, [None, 40.0], 0.0)  # old records of d1's first process
    r.fault("d1", "kill", 5.0)
    r.observe("d2", "active", 5.3)
    assert r.expire(6.0) == []
    assert _takeovers(r.expire(7.3)) == [("d1 -> d2 (polled)", pytest.approx(300.0))]
    # d1 restarted (a new pid) and preempts: its first record is new although it is the first.
    r.observe("d1", "standby", 9.0)
    r.observe("d2", "standby", 10.0)
    r.observe("d1", "active", 10.1)
    events = r.reported("d1", 33, [55.0], 10.1)
    assert _takeovers(events) == [("d2 -> d1 (reported; polled 100 ms)", 55.0)]
    r.fault("d1", "kill", 12.0)
    r.observe("d2", "active", 12.2)
    assert _takeovers(r.expire(12.2, all_=True)) == [("d1 -> d2 (polled)", pytest.approx(200.0))]
