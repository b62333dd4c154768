"""random, rweight, srv, twos with a seeded Random: shares within tolerance over 10,000 picks."""

from __future__ import annotations

import pytest

from sipha.dispatcher.schedulers import Destination
from tests.dispatcher._scheduler_helpers import dests, key, make, picks, shares

N = 10_000
TOL = 0.02  # about 4 standard deviations at N = 10,000


def assert_shares(got: dict[str, float], expected: dict[str, float]) -> None:
    assert set(got) == {k for k, v in expected.items() if v > 0}
    for k, v in expected.items():
        assert abs(got.get(k, 0.0) - v) < TOL, (k, got)


@pytest.mark.parametrize("name", ["random", "rweight", "srv", "twos"])
def test_same_seed_same_sequence(name: str) -> None:
    ds = dests(1, 2, 3)
    assert picks(make(name, ds, seed=7), 200) == picks(make(name, ds, seed=7), 200)
    assert picks(make(name, ds, seed=7), 200) != picks(make(name, ds, seed=8), 200)


def test_random_is_uniform_and_ignores_weights() -> None:
    got = shares(picks(make("random", dests(1, 5, 1, 9)), N))
    assert_shares(got, dict.fromkeys("ABCD", 0.25))


def test_rweight_follows_weights() -> None:
    got = shares(picks(make("rweight", dests(1, 2, 3, 4)), N))
    assert_shares(got, {"A": 0.1, "B": 0.2, "C": 0.3, "D": 0.4})


def test_rweight_renormalises_over_remaining_servers() -> None:
    ds = dests(1, 2, 3, 4)
    ds[3].usable = False
    got = shares(picks(make("rweight", ds), N))
    assert_shares(got, {"A": 1 / 6, "B": 2 / 6, "C": 3 / 6})


def test_rweight_latency_factor_halves_the_share_of_a_twice_as_slow_server() -> None:
    ds = dests(1, 1, 1)
    ds[0].latency_ms, ds[1].latency_ms = 10.0, 20.0  # C unmeasured: not penalised
    got = shares(picks(make("rweight", ds, latency_factor=True), N))
    assert_shares(got, {"A": 0.4, "B": 0.2, "C": 0.4})
    # Without the option latency is ignored.
    assert_shares(shares(picks(make("rweight", ds), N)), dict.fromkeys("ABC", 1 / 3))


def test_srv_uses_the_lowest_priority_group_weighted() -> None:
    ds = [
        Destination("A", weight=1, priority=0),
        Destination("B", weight=3, priority=0),
        Destination("C", weight=5, priority=1),
        Destination("D", weight=5, priority=1),
    ]
    sched = make("srv", ds)
    assert_shares(shares(picks(sched, N)), {"A": 0.25, "B": 0.75})
    ds[0].usable = ds[1].usable = False
    assert_shares(shares(picks(sched, N)), {"C": 0.5, "D": 0.5})


def test_srv_failover_moves_to_the_next_group_when_the_top_is_exhausted() -> None:
    ds = [Destination("A", priority=0), Destination("B", priority=1)]
    d = make("srv", ds).pick(key=key(), now=0.0, exclude=frozenset("A"))
    assert d is not None
    assert d.id == "B"


def test_twos_with_equal_load_keeps_the_first_weighted_draw() -> None:
    got = shares(picks(make("twos", dests(1, 3)), N))
    assert_shares(got, {"A": 0.25, "B": 0.75})


def test_twos_prefers_the_less_loaded_of_two_draws() -> None:
    ds = dests(1, 1, 1, 1)
    for d in ds[1:]:
        d.active_calls = 10
    got = shares(picks(make("twos", ds), N))
    # A wins whenever either draw is A: 1 - (3/4)^2.
    p_a = 1 - 0.75**2
    assert_shares(got, {"A": p_a, "B": (1 - p_a) / 3, "C": (1 - p_a) / 3, "D": (1 - p_a) / 3})


def test_twos_compares_load_per_weight() -> None:
    ds = dests(1, 4)
    ds[0].active_calls, ds[1].active_calls = 1, 2  # 1/1 > 2/4: B is less loaded
    got = shares(picks(make("twos", ds), N))
    # A only when both draws are A: (1/5)^2.
    assert_shares(got, {"A": 0.04, "B": 0.96})
