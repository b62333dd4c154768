"""rr and wrr: exact rotation and exact IPVS interleaved weighted sequences."""

from __future__ import annotations

from collections import Counter

from tests.dispatcher._scheduler_helpers import dests, key, make, picks


def test_rr_gives_exactly_equal_shares() -> None:
    assert Counter(picks(make("rr", dests(1, 1, 1, 1)), 4000)) == {
        "A": 1000,
        "B": 1000,
        "C": 1000,
        "D": 1000,
    }


def test_rr_ignores_weight_except_zero() -> None:
    assert picks(make("rr", dests(5, 1, 0, 2)), 6) == ["A", "B", "D", "A", "B", "D"]


def test_rr_skips_unusable_without_losing_the_rotation() -> None:
    ds = dests(1, 1, 1, 1)
    sched = make("rr", ds)
    assert picks(sched, 2) == ["A", "B"]
    ds[2].usable = False
    sched.on_health_change(dest=ds[2], usable=False)
    assert picks(sched, 3) == ["D", "A", "B"]
    ds[2].usable = True
    sched.on_health_change(dest=ds[2], usable=True)
    assert picks(sched, 4) == ["C", "D", "A", "B"]


def test_rr_exclude_takes_the_next_without_consuming_the_excluded_turn() -> None:
    sched = make("rr", dests(1, 1, 1))
    assert sched.pick(key=key(), now=0, exclude=frozenset("A")).id == "B"  # type: ignore[union-attr]
    assert picks(sched, 3) == ["C", "A", "B"]


def test_rr_survives_shrinking_membership() -> None:
    ds = dests(1, 1, 1, 1)
    sched = make("rr", ds)
    picks(sched, 3)
    sched.on_destinations_changed(destinations=ds[:2])
    assert Counter(picks(sched, 100)) == {"A": 50, "B": 50}


def test_wrr_ipvs_interleaved_sequence_for_weights_1_1_2_2() -> None:
    sched = make("wrr", dests(1, 1, 2, 2))
    assert picks(sched, 12) == ["C", "D", "A", "B", "C", "D"] * 2


def test_wrr_ipvs_interleaved_sequence_for_weights_4_3_2() -> None:
    # cw = 4: A; cw = 3: A B; cw = 2: A B C; cw = 1: A B C
    assert picks(make("wrr", dests(4, 3, 2)), 9) == list("AABABCABC")


def test_wrr_uses_gcd_so_large_weights_cycle_fast() -> None:
    assert picks(make("wrr", dests(100, 100, 200, 200)), 6) == ["C", "D", "A", "B", "C", "D"]


def test_wrr_shares_are_exact_per_cycle() -> None:
    assert Counter(picks(make("wrr", dests(1, 1, 2, 2)), 600)) == {
        "A": 100,
        "B": 100,
        "C": 200,
        "D": 200,
    }


def test_wrr_recomputes_cycle_when_a_server_goes_down() -> None:
    ds = dests(1, 1, 2, 4)
    sched = make("wrr", ds)
    ds[3].usable = False
    sched.on_health_change(dest=ds[3], usable=False)
    # Over A1 B1 C2: cw = 2: C; cw = 1: A B C
    assert picks(sched, 8) == list("CABCCABC")


def test_wrr_reweight_takes_effect() -> None:
    ds = dests(1, 1)
    sched = make("wrr", ds)
    ds[1].weight = 3
    sched.on_destinations_changed(destinations=ds)
    assert Counter(picks(sched, 400)) == {"A": 100, "B": 300}


def test_wrr_exclude_skips_within_the_pass() -> None:
    sched = make("wrr", dests(1, 1, 2, 2))
    assert sched.pick(key=key(), now=0, exclude=frozenset("C")).id == "D"  # type: ignore[union-attr]
    assert picks(sched, 4) == ["A", "B", "C", "D"]
