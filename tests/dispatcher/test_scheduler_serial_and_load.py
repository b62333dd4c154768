"""prio, fo, ovf (serial / overflow) and cl, lat (measured load): who gets the call, and who
gets it next on failover."""

from __future__ import annotations

from sipha.dispatcher.schedulers import Destination, Scheduler
from tests.dispatcher._scheduler_helpers import key, make


def walk(sched: Scheduler) -> list[str]:
    """Failover order: pick, exclude it, pick again... until None."""
    tried: list[str] = []
    while (d := sched.pick(key=key(), now=0.0, exclude=frozenset(tried))) is not None:
        tried.append(d.id)
    return tried


def test_prio_picks_highest_priority_value_then_fails_over_in_order() -> None:
    # Kamailio algorithm 8 sorts a set by priority, highest first; ties keep list order.
    ds = [
        Destination("A", priority=5),
        Destination("B", priority=1),
        Destination("C", priority=3),
        Destination("D", priority=1),
    ]
    sched = make("prio", ds)
    assert {sched.pick(key=key(i), now=0.0).id for i in range(50)} == {"A"}  # type: ignore[union-attr]
    assert walk(sched) == ["A", "C", "B", "D"]


def test_prio_skips_down_servers_and_returns_when_they_recover() -> None:
    ds = [Destination("A", priority=1), Destination("B", priority=0)]
    sched = make("prio", ds)
    ds[0].usable = False
    sched.on_health_change(dest=ds[0], usable=False)
    assert sched.pick(key=key(), now=0.0).id == "B"  # type: ignore[union-attr]
    ds[0].usable = True
    sched.on_health_change(dest=ds[0], usable=True)
    assert sched.pick(key=key(), now=0.0).id == "A"  # type: ignore[union-attr]


def test_fo_picks_highest_weight_first_on_ties_then_fails_over_by_weight() -> None:
    ds = [Destination("A", weight=2), Destination("B", weight=7), Destination("C", weight=7)]
    sched = make("fo", ds)
    assert walk(sched) == ["B", "C", "A"]


def test_fo_ignores_load() -> None:
    ds = [Destination("A", weight=2), Destination("B", weight=7, active_calls=10_000)]
    assert make("fo", ds).pick(key=key(), now=0.0).id == "B"  # type: ignore[union-attr]


def test_ovf_fills_the_heaviest_server_up_to_its_weight_then_overflows() -> None:
    ds = [Destination("A", weight=2), Destination("B", weight=3)]
    sched = make("ovf", ds)
    got: list[str | None] = []
    for _ in range(6):
        d = sched.pick(key=key(), now=0.0)
        if d is None:
            got.append(None)
            continue
        d.active_calls += 1
        got.append(d.id)
    assert got == ["B", "B", "B", "A", "A", None]
    ds[1].active_calls -= 1  # a call on B ends
    assert sched.pick(key=key(), now=0.0).id == "B"  # type: ignore[union-attr]


def test_ovf_failover_goes_to_the_next_heaviest_with_room() -> None:
    ds = [
        Destination("A", weight=1),
        Destination("B", weight=5, active_calls=5),
        Destination("C", weight=3),
    ]
    assert walk(make("ovf", ds)) == ["C", "A"]


def test_cl_picks_fewest_calls_under_maxload_and_none_when_all_full() -> None:
    ds = [
        Destination("A", maxload=10, active_calls=4),
        Destination("B", maxload=3, active_calls=3),  # full, despite fewest calls
        Destination("C", maxload=0, active_calls=6),  # unlimited
    ]
    sched = make("cl", ds)
    assert walk(sched) == ["A", "C"]
    ds[0].active_calls = 10
    assert walk(sched) == ["C"]
    ds[2].maxload = 6
    assert sched.pick(key=key(), now=0.0) is None


def test_cl_spreads_new_calls_as_counters_rise() -> None:
    ds = [Destination("A", maxload=2), Destination("B", maxload=3)]
    sched = make("cl", ds)
    got = []
    while (d := sched.pick(key=key(), now=0.0)) is not None:
        d.active_calls += 1
        got.append(d.id)
    assert got == ["A", "B", "A", "B", "B"]


def test_lat_picks_lowest_latency_unmeasured_last_ties_by_load() -> None:
    ds = [
        Destination("A", latency_ms=None),
        Destination("B", latency_ms=12.5, active_calls=4),
        Destination("C", latency_ms=30.0),
        Destination("D", latency_ms=12.5, active_calls=2),
    ]
    assert walk(make("lat", ds)) == ["D", "B", "C", "A"]


def test_lat_follows_updated_latency() -> None:
    ds = [Destination("A", latency_ms=5.0), Destination("B", latency_ms=9.0)]
    sched = make("lat", ds)
    assert sched.pick(key=key(), now=0.0).id == "A"  # type: ignore[union-attr]
    ds[0].latency_ms = 50.0
    assert sched.pick(key=key(), now=1.0).id == "B"  # type: ignore[union-attr]
