"""Stats merge exactly: counters add, histograms add, percentiles are never averaged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.loadtest.stats import (
    HIST_HIGHEST_US,
    FailureReason,
    IntervalStats,
    LatencyKind,
    RunStats,
    is_reason_key,
    merge_all,
    new_histogram,
    percentile_summary,
    reason_for_status,
    reason_key,
)

latencies = st.lists(st.floats(min_value=0.0, max_value=70.0), max_size=60)


def _fed(setups: list[float]) -> IntervalStats:
    stats = IntervalStats()
    for s in setups:
        stats.record_attempt()
        stats.record_success(s, s / 2)
    return stats


def test_reason_keys_vocabulary() -> None:
    assert reason_key(FailureReason.TIMEOUT_B) == "timeout"
    assert reason_key(FailureReason.TIMEOUT_F) == "timeout-f"
    assert reason_key(FailureReason.TRANSPORT_ERROR) == "transport"
    assert reason_key(FailureReason.UNEXPECTED_MESSAGE) == "unexpected"
    assert reason_key(FailureReason.BYE_FAILED) == "bye-failed"
    assert reason_key(486) == reason_for_status(486) == "486"
    assert reason_key("503") == "503"
    assert is_reason_key("699")
    assert not is_reason_key("200")
    assert not is_reason_key("nope")
    for bad in (200, 180, 99, 700):
        with pytest.raises(ValueError, match="not a failure status"):
            reason_for_status(bad)
    with pytest.raises(ValueError, match="unknown failure reason"):
        IntervalStats().record_failure("timed-out")


def test_two_agents_counts_sum() -> None:
    a, b = IntervalStats(), IntervalStats()
    for _ in range(5):
        a.record_attempt()
    a.record_success(0.1, 0.05)
    a.record_failure(FailureReason.TIMEOUT_B)
    a.record_failure(486)
    a.record_retransmission()
    a.record_transaction_ok()
    a.concurrent_calls = 3
    for _ in range(7):
        b.record_attempt()
    b.record_success(0.2, None)
    b.record_success(0.3, 0.1)
    b.record_failure(486)
    b.record_failure(FailureReason.TRANSPORT_ERROR)
    b.record_transaction_failed()
    b.concurrent_calls = 4

    merged = merge_all([a, b])
    assert merged.calls_attempted == 12
    assert merged.calls_successful == 3
    assert merged.calls_failed == 4
    assert merged.failed_by_reason == {"timeout": 1, "486": 2, "transport": 1}
    assert merged.failed_with_status() == 2
    assert merged.retransmissions == 1
    assert (merged.transactions_ok, merged.transactions_failed) == (1, 1)
    assert merged.concurrent_calls == 7  # same second, two agents: calls in progress add
    hist_200 = merged.histogram("setup_200")
    hist_18x = merged.histogram("setup_18x")
    assert hist_200 is not None
    assert hist_200.get_total_count() == 3
    assert hist_18x is not None
    assert hist_18x.get_total_count() == 2
    # the inputs are untouched
    assert a.calls_attempted == 5
    assert b.failed_by_reason == {"486": 1, "transport": 1}


def test_extend_replaces_the_gauge() -> None:
    first, later = IntervalStats(), IntervalStats()
    first.concurrent_calls, later.concurrent_calls = 10, 4
    first.record_attempt()
    later.record_attempt()
    first.extend(later)
    assert first.concurrent_calls == 4
    assert first.calls_attempted == 2


@settings(max_examples=200, deadline=None)
@given(latencies, latencies, latencies)
def test_merged_percentiles_equal_one_histogram_fed_everything(
    xs: list[float], ys: list[float], zs: list[float]
) -> None:
    merged = merge_all([_fed(xs), _fed(ys), _fed(zs)])
    single = _fed(xs + ys + zs)
    assert merged == single
    which: LatencyKind
    for which in ("setup_18x", "setup_200"):
        assert merged.percentiles(which) == single.percentiles(which)


def test_latency_is_microseconds_and_clamped() -> None:
    stats = IntervalStats()
    stats.record_success(0.0, None)  # a 0 us loopback answer is still a sample
    stats.record_success(0.0123, None)
    stats.record_success(120.0, None)  # beyond 60 s: clamped, still counted
    hist = stats.histogram("setup_200")
    assert hist is not None
    assert hist.get_total_count() == 3
    assert hist.get_min_value() == 1
    assert hist.get_max_value() >= HIST_HIGHEST_US - HIST_HIGHEST_US // 1000
    assert stats.percentiles("setup_200")["p50"] == pytest.approx(12.3, rel=1e-3)
    with pytest.raises(ValueError, match="NaN"):
        stats.record_success(float("nan"), None)
    assert stats.calls_successful == 3


def test_percentile_summary_labels_and_empty() -> None:
    assert percentile_summary(None) == {"p50": 0, "p90": 0, "p99": 0, "p99.9": 0, "max": 0}
    hist = new_histogram()
    for us in range(1, 1001):
        hist.record_value(us * 1000)  # 1 .. 1000 ms
    summary = percentile_summary(hist)
    assert list(summary) == ["p50", "p90", "p99", "p99.9", "max"]
    assert summary["p50"] == pytest.approx(500, rel=1e-3)
    assert summary["p99"] == pytest.approx(990, rel=1e-3)
    assert summary["max"] == pytest.approx(1000, rel=1e-3)


def test_run_stats_merges_agents_per_second_and_totals() -> None:
    run = RunStats()
    a0, b0, a1 = _fed([0.01, 0.02]), _fed([0.03]), _fed([0.5])
    a0.concurrent_calls, b0.concurrent_calls, a1.concurrent_calls = 2, 5, 1
    b0.record_failure(503)
    assert run.add("a", 0, a0)
    assert run.add("b", 0, b0.to_wire())  # snapshots are accepted directly
    assert run.add("a", 1, a1)
    assert not run.add("a", 1, a1)  # a resent report counts once
    assert run.seconds() == [0, 1]
    assert run.agents == frozenset({"a", "b"})
    assert run.interval(0).calls_successful == 3
    assert run.interval(0).concurrent_calls == 7
    assert run.interval(5) == IntervalStats()
    totals = run.totals()
    assert totals.calls_attempted == 4
    assert totals.calls_successful == 4
    assert totals.failed_by_reason == {"503": 1}
    # calls in progress now: a's latest (second 1) + b's latest (second 0)
    assert totals.concurrent_calls == 1 + 5
    assert run.peak_concurrent() == 7
    assert run.percentiles("setup_200") == _fed([0.01, 0.02, 0.03, 0.5]).percentiles("setup_200")
    assert run.percentiles()["max"] == pytest.approx(500, rel=1e-3)
    with pytest.raises(ValueError, match="second"):
        run.add("a", -1, a0)


def test_run_stats_sealed_seconds_still_merge_exactly() -> None:
    run = RunStats()
    run.add("a", 0, _fed([0.01]))
    run.add("a", 1, _fed([0.02]))
    run.seal_through(0)
    run.add("b", 0, _fed([0.04]))  # late report for a sealed second
    assert run.interval(0) == _fed([0.01, 0.04])
    assert [s for s, _ in run.series()] == [0, 1]
    assert dict(run.series())[1] == _fed([0.02])
    assert run.totals() == _fed([0.01, 0.04, 0.02])


def test_answered_slots_are_the_union_and_travel_on_the_wire() -> None:
    from sipha.loadtest.stats import IntervalStats, StatsDecodeError, decode_slots

    a, b = IntervalStats(), IntervalStats()
    a.record_answered(0.005)   # slot 0
    a.record_answered(0.999)   # slot 99
    b.record_answered(0.5)     # slot 50
    b.record_answered(1.7)     # clamped into the interval: slot 99
    a.merge(b)
    assert a.answered_slots == (1 << 0) | (1 << 50) | (1 << 99)
    back = IntervalStats.from_wire(a.to_wire())
    assert back.answered_slots == a.answered_slots
    assert back == a
    assert decode_slots("") == 0
    for bad in ("xyz", format(1 << 100, "x")):
        with pytest.raises(StatsDecodeError, match="answered_slots"):
            decode_slots(bad)
