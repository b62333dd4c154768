"""The numpy read-outs of a latency histogram equal hdrh's own (which are too slow to call once a
second: they stalled the agent's event loop), for any recorded values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.loadtest.histmath import difference, mean_stddev, percentile_values
from sipha.loadtest.stats import HIST_HIGHEST_US, HIST_LOWEST_US, PERCENTILES, new_histogram

PCTS = [p for _, p in PERCENTILES] + [100.0, 0.001]
samples = st.lists(
    st.tuples(st.integers(HIST_LOWEST_US, HIST_HIGHEST_US), st.integers(1, 1000)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=25, deadline=None)
@given(samples)
def test_percentiles_mean_and_deviation_equal_hdrh(values: list[tuple[int, int]]) -> None:
    hist = new_histogram()
    for value, count in values:
        hist.record_value(value, count)
    assert percentile_values(hist, PCTS) == hist.get_percentile_to_value_dict(PCTS)
    mean, std = mean_stddev(hist)
    assert mean == pytest.approx(hist.get_mean_value(), rel=1e-12)
    assert std == pytest.approx(hist.get_stddev(), rel=1e-9, abs=1e-6)


def test_empty_histogram_reads_zero() -> None:
    hist = new_histogram()
    assert percentile_values(hist, [50.0]) == {50.0: 0}
    assert mean_stddev(hist) == (0.0, 0.0)


def test_percentile_outside_range_is_refused() -> None:
    hist = new_histogram()
    hist.record_value(10)
    with pytest.raises(ValueError, match="not in"):
        percentile_values(hist, [0.0])


def _filled(values: list[tuple[int, int]]):  # type: ignore[no-untyped-def]
    hist = new_histogram()
    for value, count in values:
        hist.record_value(value, count)
    return hist


@settings(max_examples=25, deadline=None)
@given(samples, samples)
def test_difference_gives_back_the_missing_part_bucket_for_bucket(
    part_values: list[tuple[int, int]], rest_values: list[tuple[int, int]]
) -> None:
    part, rest = _filled(part_values), _filled(rest_values)
    whole = _filled(part_values + rest_values)
    gap = difference(whole, part)
    assert gap is not None
    assert gap.get_total_count() == rest.get_total_count()
    assert np.array_equal(np.ctypeslib.as_array(gap.counts), np.ctypeslib.as_array(rest.counts))
    assert percentile_values(gap, PCTS) == percentile_values(rest, PCTS)
    # A part holding samples the whole lacks is no subset: no difference.
    assert difference(part, whole) is None
    assert difference(whole, None).get_total_count() == whole.get_total_count()  # type: ignore[union-attr]
