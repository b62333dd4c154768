"""IntervalStats <-> IntervalSnapshot <-> bytes, and bad snapshots refused."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.loadtest.stats import (
    FailureReason,
    IntervalSnapshot,
    IntervalStats,
    StatsDecodeError,
)

reasons = st.sampled_from([*FailureReason, 404, 486, 503, 600])


@st.composite
def interval_stats(draw: st.DrawFn) -> IntervalStats:
    stats = IntervalStats()
    for _ in range(draw(st.integers(0, 20))):
        stats.record_attempt()
    for s in draw(st.lists(st.floats(0, 61), max_size=20)):
        stats.record_success(s, draw(st.none() | st.floats(0, 61)))
    for r in draw(st.lists(reasons, max_size=10)):
        stats.record_failure(r)
    for _ in range(draw(st.integers(0, 5))):
        stats.record_retransmission()
        stats.record_transaction_ok()
    stats.transactions_failed = draw(st.integers(0, 3))
    stats.concurrent_calls = draw(st.integers(0, 1000))
    return stats


@settings(max_examples=200, deadline=None)
@given(interval_stats())
def test_round_trip_through_msgpack_and_json(stats: IntervalStats) -> None:
    snap = stats.to_wire()
    for enc, dec in (
        (msgspec.msgpack.encode, msgspec.msgpack.Decoder(IntervalSnapshot).decode),
        (msgspec.json.encode, msgspec.json.Decoder(IntervalSnapshot).decode),
    ):
        back = IntervalStats.from_wire(dec(enc(snap)))
        assert back == stats
        assert back.percentiles("setup_200") == stats.percentiles("setup_200")
        assert back.percentiles("setup_18x") == stats.percentiles("setup_18x")


def test_empty_histograms_travel_as_empty_strings() -> None:
    snap = IntervalStats().to_wire()
    assert snap.setup_18x == snap.setup_200 == ""
    assert IntervalStats.from_wire(snap).is_empty()


def test_bad_snapshots_are_refused() -> None:
    good = IntervalStats()
    good.record_success(0.1, None)
    good.record_failure(486)
    snap = good.to_wire()
    cases = {
        "negative": msgspec.structs.replace(snap, retransmissions=-1),
        "unknown failure reason": msgspec.structs.replace(snap, failed_by_reason={"boom": 1}),
        "adds up to": msgspec.structs.replace(snap, calls_failed=2),
        "undecodable": msgspec.structs.replace(snap, setup_200="HISTFAAA!!"),
        "more samples": msgspec.structs.replace(snap, calls_successful=0),
    }
    for message, bad in cases.items():
        with pytest.raises(StatsDecodeError, match=message):
            IntervalStats.from_wire(bad)


def test_differently_shaped_histogram_is_refused() -> None:
    from hdrh.histogram import HdrHistogram

    other = HdrHistogram(1, 3_600_000_000, 2)
    other.record_value(5)
    snap = IntervalSnapshot(calls_successful=1, setup_200=other.encode().decode("ascii"))
    with pytest.raises(StatsDecodeError, match="histogram range"):
        IntervalStats.from_wire(snap)
