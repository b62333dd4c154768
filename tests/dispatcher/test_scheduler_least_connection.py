"""lc, wlc, sed, nq: the IPVS formulas over active calls, ties by configuration order."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.dispatcher.schedulers import Destination
from tests.dispatcher._scheduler_helpers import key, make


def servers(*spec: tuple[int, int]) -> list[Destination]:
    """(weight, active_calls) pairs -> destinations A, B, ..."""
    return [Destination(chr(65 + i), weight=w, active_calls=c) for i, (w, c) in enumerate(spec)]


def chosen(name: str, ds: list[Destination]) -> str | None:
    d = make(name, ds).pick(key=key(), now=0.0)
    return None if d is None else d.id


def test_lc_fewest_active_calls_regardless_of_weight() -> None:
    assert chosen("lc", servers((1, 3), (10, 5), (1, 2))) == "C"


def test_lc_tie_goes_to_the_first() -> None:
    assert chosen("lc", servers((1, 2), (10, 2), (1, 2))) == "A"


def test_wlc_minimises_calls_per_weight() -> None:
    # ratios 1, 1.5, 4/3
    assert chosen("wlc", servers((1, 1), (2, 3), (3, 4))) == "A"
    # ratios 3, 1.5, 4/3
    assert chosen("wlc", servers((1, 3), (2, 3), (3, 4))) == "C"


def test_wlc_and_sed_differ_on_idle_servers() -> None:
    ds = servers((1, 0), (3, 0))
    assert chosen("wlc", ds) == "A"  # 0/1 == 0/3: tie, first wins
    assert chosen("sed", ds) == "B"  # 1/1 > 1/3


def test_sed_minimises_calls_plus_one_per_weight() -> None:
    # (C+1)/W: 2, 2, 5/3
    assert chosen("sed", servers((1, 1), (2, 3), (3, 4))) == "C"
    # 2/2 == 3/3: tie, first wins
    assert chosen("sed", servers((2, 1), (3, 2))) == "A"


def test_nq_prefers_the_first_idle_server_even_if_light() -> None:
    assert chosen("nq", servers((10, 1), (1, 0), (5, 0))) == "B"


def test_nq_falls_back_to_sed_when_nobody_is_idle() -> None:
    ds = servers((1, 1), (2, 3), (3, 4))
    assert chosen("nq", ds) == chosen("sed", ds) == "C"


def test_least_connection_follows_live_counters() -> None:
    ds = servers((1, 0), (1, 0))
    sched = make("lc", ds)
    got = []
    for _ in range(6):
        d = sched.pick(key=key(), now=0.0)
        assert d is not None
        d.active_calls += 1  # the dispatcher's bookkeeping
        got.append(d.id)
    assert got == list("ABABAB")


def reference(name: str, ds: list[Destination]) -> str | None:
    ok = [(i, d) for i, d in enumerate(ds) if d.usable and d.weight > 0]
    if not ok:
        return None
    if name == "nq":
        idle = [d for _, d in ok if d.active_calls == 0]
        if idle:
            return idle[0].id
        name = "sed"
    cost: Callable[[Destination], Fraction] = {
        "lc": lambda d: Fraction(d.active_calls),
        "wlc": lambda d: Fraction(d.active_calls, d.weight),
        "sed": lambda d: Fraction(d.active_calls + 1, d.weight),
    }[name]
    return min(ok, key=lambda p: (cost(p[1]), p[0]))[1].id


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(["lc", "wlc", "sed", "nq"]),
    spec=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 9), st.booleans()), max_size=7),
)
def test_matches_the_formula_with_first_wins_ties(
    name: str, spec: list[tuple[int, int, bool]]
) -> None:
    ds = [
        Destination(chr(65 + i), weight=w, active_calls=c, usable=u)
        for i, (w, c, u) in enumerate(spec)
    ]
    assert chosen(name, ds) == reference(name, ds)


@pytest.mark.parametrize("name", ["lc", "wlc", "sed", "nq"])
def test_exclude_gives_the_next_best(name: str) -> None:
    ds = servers((1, 0), (1, 1), (1, 2))
    d = make(name, ds).pick(key=key(), now=0.0, exclude=frozenset("A"))
    assert d is not None
    assert d.id == "B"
