"""Run verdicts, purely: criteria + measurements -> one verdict per criterion set."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipha.common.expect import (
    CRITERIA,
    EXIT_FAILED,
    EXIT_MET,
    Criteria,
    Measured,
    Verdict,
    describe,
    evaluate,
    exit_code,
    fix_for,
    longest_gap_slots,
    merged,
)

CLEAN = Measured(failed_calls=0, success_ratio=1.0, takeover_ms=12.0, setup_p99_ms=4.5,
                 longest_gap_ms=70.0, unfinished_calls=0)


def test_no_criteria_no_verdict_and_exit_0() -> None:
    assert evaluate(Criteria(), CLEAN) == []
    assert exit_code([]) == EXIT_MET
    assert Criteria().is_empty()


def test_bounds_are_inclusive_and_each_side_is_checked() -> None:
    criteria = Criteria(max_failed_calls=0, min_success_ratio=1.0, max_takeover_ms=12,
                        max_setup_p99_ms=4.5, max_longest_gap_ms=70, max_unfinished_calls=0,
                        max_failed_registrations=0)
    verdicts = evaluate(criteria, msgspec.structs.replace(CLEAN, failed_registrations=0))
    assert [v.criterion for v in verdicts] == list(CRITERIA)
    assert all(v.passed for v in verdicts)
    worse = Measured(failed_calls=1, success_ratio=0.99, takeover_ms=12.5, setup_p99_ms=4.6,
                     longest_gap_ms=80.0, unfinished_calls=1, failed_registrations=1)
    failed = evaluate(criteria, worse)
    assert not any(v.passed for v in failed)
    assert failed[0] == Verdict(criterion="max_failed_calls", bound=0.0, measured=1.0,
                                passed=False)
    assert exit_code(failed) == EXIT_FAILED


def test_what_was_not_measured_fails() -> None:
    # No takeover seen although the plan bounds it; no call attempted, so no ratio.
    nothing = Measured(failed_calls=0, success_ratio=None, takeover_ms=None, setup_p99_ms=None,
                       longest_gap_ms=None, unfinished_calls=0)
    verdicts = evaluate(Criteria(min_success_ratio=0.5, max_takeover_ms=300), nothing)
    assert [(v.measured, v.passed) for v in verdicts] == [(None, False), (None, False)]
    assert describe(verdicts[1]) == "max_takeover_ms: not measured, bound <= 300: FAILED"


def test_describe_names_measured_and_bound() -> None:
    ratio = msgspec.structs.replace(CLEAN, success_ratio=0.9583)
    v = evaluate(Criteria(min_success_ratio=0.85), ratio)[0]
    assert describe(v) == "min_success_ratio: measured 0.9583, bound >= 0.85: met"


_bound = st.none() | st.integers(0, 50)
_value = st.none() | st.integers(0, 50)


@given(bounds=st.tuples(*[_bound] * len(CRITERIA)), values=st.tuples(*[_value] * len(CRITERIA)))
def test_every_criterion_against_every_measurement(
    bounds: tuple[int | None, ...], values: tuple[int | None, ...]
) -> None:
    """For any subset of criteria and any measurements: a verdict per criterion set, passing
    exactly when measured and on the right side of its bound; exit 0 iff all pass."""
    criteria = Criteria(**{
        name: (None if b is None else b / 50 if name == "min_success_ratio" else b)
        for name, b in zip(CRITERIA, bounds, strict=True)})
    fields = {spec.measure: v for spec, v in zip(CRITERIA.values(), values, strict=True)}
    for counter in ("failed_calls", "unfinished_calls"):
        fields[counter] = fields[counter] or 0
    if fields["success_ratio"] is not None:
        fields["success_ratio"] /= 50
    measured = Measured(**fields)
    verdicts = evaluate(criteria, measured)
    assert [v.criterion for v in verdicts] == [n for n in CRITERIA if getattr(criteria, n)
                                               is not None]
    for v in verdicts:
        spec = CRITERIA[v.criterion]
        value = getattr(measured, spec.measure)
        expected = value is not None and (
            value <= v.bound if spec.side == "max" else value >= v.bound)
        assert v.passed is expected
    assert (exit_code(verdicts) == EXIT_MET) is all(v.passed for v in verdicts)


def test_a_profile_table_overrides_key_by_key() -> None:
    base = Criteria(max_failed_calls=0, max_takeover_ms=300)
    paper = Criteria(max_failed_calls=None, min_success_ratio=0.9, max_takeover_ms=600)
    assert merged(base, paper) == Criteria(max_failed_calls=0, min_success_ratio=0.9,
                                           max_takeover_ms=600)
    assert merged(base, None) is base


@pytest.mark.parametrize(("key", "words"), [
    ("max_failed_calls", "whole number >= 0"),
    ("min_success_ratio", "between 0 and 1"),
    ("max_takeover_ms", "milliseconds >= 0"),
    ("max_fialed_calls", "write one of: max_failed_calls, min_success_ratio"),
])
def test_fix_for_each_key(key: str, words: str) -> None:
    assert words in fix_for(key)


@pytest.mark.parametrize(("bits", "last", "gap"), [
    (0, 0, 0),
    (0b1, 0, 0),
    (0b1001, 0, 2),  # two empty slots between answers
    (0b10000001, 3, 6),
    (0b11, 9, 8),  # nothing answered after slot 1, attempts until slot 9: the outage counts
    (0b1100, 0, 0),  # before the first answer is not a gap
])
def test_longest_gap_slots(bits: int, last: int, gap: int) -> None:
    assert longest_gap_slots(bits, last) == gap
