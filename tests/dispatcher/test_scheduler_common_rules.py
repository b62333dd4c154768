"""Rules every scheduler obeys: eligibility (usable, weight > 0, not excluded), None when
nothing qualifies, and failover by growing `exclude` visiting each server once."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.dispatcher.schedulers import Destination
from tests.dispatcher._scheduler_helpers import ALL_NAMES, dests, key, make

NAMES = sorted(ALL_NAMES)
# These may refuse an eligible server because it is full.
CAPACITY_BOUND = {"ovf", "cl"}


@pytest.mark.parametrize("name", NAMES)
def test_no_destinations_gives_none(name: str) -> None:
    assert make(name, []).pick(key=key(), now=0.0) is None


@pytest.mark.parametrize("name", NAMES)
def test_nothing_usable_gives_none(name: str) -> None:
    ds = dests(1, 2, 3)
    for d in ds:
        d.usable = False
    sched = make(name, ds)
    for d in ds:
        sched.on_health_change(dest=d, usable=False)
    assert sched.pick(key=key(), now=0.0) is None


@pytest.mark.parametrize("name", NAMES)
def test_weight_zero_is_never_picked(name: str) -> None:
    ds = dests(0, 0, 0)
    assert make(name, ds).pick(key=key(), now=0.0) is None
    ds = dests(0, 5, 0)
    sched = make(name, ds)
    assert {sched.pick(key=key(i), now=0.0).id for i in range(200)} == {"B"}  # type: ignore[union-attr]


@pytest.mark.parametrize("name", NAMES)
def test_everything_excluded_gives_none(name: str) -> None:
    assert make(name, dests(1, 1)).pick(key=key(), now=0.0, exclude=frozenset("AB")) is None


@pytest.mark.parametrize("name", NAMES)
def test_failover_walk_visits_every_eligible_server_once(name: str) -> None:
    ds = dests(3, 1, 2, 0, 4)
    ds[2].usable = False
    sched = make(name, ds)
    sched.on_health_change(dest=ds[2], usable=False)
    for n in range(20):
        tried: set[str] = set()
        while (d := sched.pick(key=key(n), now=0.0, exclude=frozenset(tried))) is not None:
            assert d.id not in tried
            tried.add(d.id)
        assert tried == {"A", "B", "E"}


@pytest.mark.parametrize("name", NAMES)
def test_unusable_without_hook_call_is_still_skipped(name: str) -> None:
    # The dispatcher should call on_health_change, but a missed call must not route to a dead
    # server: every pick re-checks `usable`.
    ds = dests(1, 1, 1)
    sched = make(name, ds)
    ds[0].usable = ds[1].usable = False
    assert {sched.pick(key=key(i), now=0.0).id for i in range(100)} == {"C"}  # type: ignore[union-attr]


@pytest.mark.parametrize("name", NAMES)
def test_hooks_accept_keyword_calls(name: str) -> None:
    ds = dests(1, 1)
    sched = make(name, ds)
    sched.on_call_started(dest=ds[0])
    sched.on_call_ended(dest=ds[0])
    ds.append(Destination("Z", weight=2))
    sched.on_destinations_changed(destinations=ds)
    seen = {sched.pick(key=key(i), now=0.0).id for i in range(300)}  # type: ignore[union-attr]
    assert seen <= {"A", "B", "Z"}
    assert seen


servers = st.lists(
    st.builds(
        lambda w, p, m, a, lat, u: (w, p, m, a, lat, u),
        st.integers(0, 5),
        st.integers(0, 3),
        st.integers(0, 4),
        st.integers(0, 6),
        st.none() | st.floats(0.1, 500.0),
        st.booleans(),
    ),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(NAMES), spec=servers, excl=st.sets(st.sampled_from("ABCDEF")))
def test_pick_is_eligible_and_only_none_when_nothing_qualifies(
    name: str, spec: list[tuple[int, int, int, int, float | None, bool]], excl: set[str]
) -> None:
    ds = [
        Destination(chr(65 + i), weight=w, priority=p, maxload=m, active_calls=a,
                    latency_ms=lat, usable=u)
        for i, (w, p, m, a, lat, u) in enumerate(spec)
    ]  # fmt: skip
    exclude = frozenset(excl)
    ok = [d for d in ds if d.usable and d.weight > 0 and d.id not in exclude]
    if name == "ovf":
        ok = [d for d in ok if d.active_calls < d.weight]
    elif name == "cl":
        ok = [d for d in ok if d.maxload == 0 or d.active_calls < d.maxload]
    sched = make(name, ds)
    for i in range(3):
        d = sched.pick(key=key(i), now=float(i), exclude=exclude)
        if ok:
            assert d in ok
        else:
            assert d is None
