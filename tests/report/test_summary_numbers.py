"""The summary's numbers: gaps, shares per server, takeovers."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipha.report.model import CallsSecond, ServerSample, load_results
from sipha.report.summary import (
    MergedSecond,
    calls_per_second,
    longest_answer_gap_ms,
    longest_gap_ms,
    server_shares,
    summarize,
)
from tests.report.synthetic import write_synthetic


def test_counters_add_across_sources_per_second() -> None:
    merged = calls_per_second([
        CallsSecond(t=0.2, source="a", attempted=3, successful=2, failed=1),
        CallsSecond(t=0.9, source="b", attempted=4, successful=4),
        CallsSecond(t=1.0, source="a", attempted=1),
    ])
    assert merged[0] == MergedSecond(attempted=7, successful=6, failed=1)
    assert merged[1].attempted == 1


@pytest.mark.parametrize(
    ("successes", "expected"),
    [
        ([1, 1, 1, 1], 0.0),
        ([1, 0, 0, 1, 0, 1], 2000.0),
        ([0, 1, 1], 0.0),  # before the first success: calls still on hold
        ([0, 1, 0, 1], 1000.0),
        ([1, 1, 0, 0, 0], 3000.0),
    ],
)
def test_longest_gap_counts_seconds_without_success(successes: list[int], expected: float) -> None:
    per = {i: MergedSecond(attempted=5, successful=s) for i, s in enumerate(successes)}
    assert longest_gap_ms(per) == expected


def test_gap_ignores_seconds_without_load_and_counts_missing_seconds() -> None:
    per = {0: MergedSecond(), 1: MergedSecond(attempted=1, successful=1),
           4: MergedSecond(attempted=1, successful=1), 9: MergedSecond()}
    assert longest_gap_ms(per) == 2000.0  # seconds 2 and 3 missing inside the load
    assert longest_gap_ms({}) == 0.0


def _slots(*ranges: tuple[int, int]) -> str:
    bits = 0
    for lo, hi in ranges:
        for n in range(lo, hi):
            bits |= 1 << n
    return format(bits, "x")


def test_answer_gap_to_10_ms_is_the_union_of_the_testers_slots() -> None:
    # Tester a answers in every slot but 30..59 of second 1 and 0..14 of second 2; tester b
    # fills 40..49 of second 1. The union's longest hole: second 1 slots 50..99 and second 2
    # slots 0..14 = 65 slots = 650 ms (it crosses the second boundary).
    calls = [
        CallsSecond(t=0.0, source="sipha", attempted=100, answered_slots=_slots((0, 100))),
        CallsSecond(t=1.0, source="sipha", attempted=100, answered_slots=_slots((0, 30))),
        CallsSecond(t=1.0, source="sipha-b", attempted=10, answered_slots=_slots((40, 50))),
        CallsSecond(t=2.0, source="sipha", attempted=100, answered_slots=_slots((15, 100))),
        CallsSecond(t=2.0, source="sipp:t2", attempted=100, successful=100),  # no slots
    ]
    assert longest_answer_gap_ms(calls) == 650.0
    assert longest_answer_gap_ms([CallsSecond(t=0, source="sipp:t", attempted=5)]) is None


def test_answer_gap_runs_to_the_end_of_the_load_when_answers_stop() -> None:
    # Answers stop after slot 9 of second 0 while attempts go on through second 3.
    calls = [CallsSecond(t=0.0, source="sipha", attempted=10, answered_slots=_slots((0, 10)))]
    calls += [CallsSecond(t=float(s), source="sipha", attempted=10) for s in (1, 2, 3)]
    assert longest_answer_gap_ms(calls) == 2910.0  # slot 10 of second 0 to slot 0 of second 3


def test_shares_from_server_counters() -> None:
    samples = [ServerSample(t=0, node="s2", up=True, active_calls=1, calls_total=30),
               ServerSample(t=1, node="s10", up=True, active_calls=1, calls_total=10),
               ServerSample(t=1, node="s2", up=True, active_calls=1, calls_total=60)]
    counts, shares, basis = server_shares(samples)
    assert basis == "calls"
    assert list(counts) == ["s2", "s10"]  # natural order, not string order
    assert counts == {"s2": 60, "s10": 10}
    assert shares["s2"] == pytest.approx(60 / 70)


def test_shares_fall_back_to_active_call_seconds(tmp_path: Path) -> None:
    results = load_results(write_synthetic(tmp_path / "r", calls_total=False, seconds=10))
    s = summarize(results)
    assert s.share_basis == "active-call-seconds"
    assert s.share_per_server == {"s1": pytest.approx(0.6), "s2": pytest.approx(0.4)}
    assert s.calls_per_server == {"s1": 90, "s2": 60}


def test_summary_of_a_failover_run(tmp_path: Path) -> None:
    s = summarize(load_results(write_synthetic(tmp_path / "r", gap_at=(5, 6))))
    assert s.longest_gap_ms == 2000.0
    assert s.takeover_ms == [250.0]
    assert s.faults == ["5.0 s: kill d1"]
    assert s.profile == "default"
    assert s.time_scale == 60.0
