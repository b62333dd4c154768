"""The live page's verdicts: each criterion judged on the figures so far, and the same answer as
the report's once the run is over."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sipha.common.expect import CRITERIA, Criteria, Measured, evaluate
from sipha.report.live.criteria import SoFar, live_criteria


def _met(criteria: Criteria, now: SoFar) -> dict[str, object]:
    return {str(row["name"]): row["met"] for row in live_criteria(criteria, now)}


def test_every_criterion_is_listed_in_order_with_its_bound() -> None:
    criteria = Criteria(max_failed_calls=0, min_success_ratio=0.99, max_takeover_ms=300,
                        max_setup_p99_ms=200, max_longest_gap_ms=500, max_unfinished_calls=0)
    rows = live_criteria(criteria, SoFar(attempted=10, successful=9, failed=0))
    assert [r["name"] for r in rows] == [n for n in CRITERIA if getattr(criteria, n) is not None]
    assert [r["bound"] for r in rows] == [0, 0.99, 300, 200, 500, 0]


def test_running_clean_run() -> None:
    criteria = Criteria(max_failed_calls=0, min_success_ratio=0.99, max_takeover_ms=300,
                        max_setup_p99_ms=200, max_longest_gap_ms=500, max_unfinished_calls=0)
    now = SoFar(attempted=100, successful=97, failed=0, longest_gap_ms=40.0,
                setup_p99_ms_max=12.0)
    assert _met(criteria, now) == {
        "max_failed_calls": True, "min_success_ratio": True,
        "max_takeover_ms": None,  # no takeover yet: only the end can fail it
        "max_setup_p99_ms": True, "max_longest_gap_ms": True,
        "max_unfinished_calls": None,  # 3 calls in flight: they may still finish
    }


def test_broken_bounds_show_failed_while_running() -> None:
    criteria = Criteria(max_failed_calls=0, max_takeover_ms=300, max_longest_gap_ms=500)
    now = SoFar(attempted=100, successful=90, failed=2, takeovers_ms=(12.0, 420.0),
                longest_gap_ms=900.0)
    assert _met(criteria, now) == {"max_failed_calls": False, "max_takeover_ms": False,
                                   "max_longest_gap_ms": False}


def test_a_high_second_p99_waits_for_the_whole_run_histogram() -> None:
    criteria = Criteria(max_setup_p99_ms=200)
    rows = live_criteria(criteria, SoFar(attempted=5, successful=5, failed=0,
                                         setup_p99_ms_max=350.0))
    assert rows == [{"name": "max_setup_p99_ms", "bound": 200, "measured": 350.0, "met": None}]


def test_nothing_measured_yet_is_pending() -> None:
    criteria = Criteria(min_success_ratio=0.5, max_setup_p99_ms=1, max_longest_gap_ms=1)
    assert set(_met(criteria, SoFar(attempted=3, successful=0, failed=0)).values()) == {None}
    # A criterion only the report measures (the registrations of a register+call run).
    assert _met(Criteria(max_failed_registrations=0), SoFar(1, 1, 0, finished=True)) == {
        "max_failed_registrations": None}


@given(attempted=st.integers(0, 50), successful=st.integers(0, 50), failed=st.integers(0, 50),
       takeovers=st.lists(st.floats(0, 1000), max_size=3), gap=st.floats(0, 2000),
       bounds=st.tuples(st.integers(0, 5), st.floats(0, 1), st.floats(0, 1000),
                        st.floats(0, 2000), st.integers(0, 5)))
def test_at_the_end_the_page_agrees_with_the_report(
        attempted: int, successful: int, failed: int, takeovers: list[float], gap: float,
        bounds: tuple[int, float, float, float, int]) -> None:
    attempted = max(attempted, successful + failed)
    criteria = Criteria(max_failed_calls=bounds[0], min_success_ratio=bounds[1],
                        max_takeover_ms=bounds[2], max_longest_gap_ms=bounds[3],
                        max_unfinished_calls=bounds[4])
    unfinished = attempted - successful - failed
    report = {v.criterion: v.passed for v in evaluate(criteria, Measured(
        failed_calls=failed,
        success_ratio=successful / attempted if attempted else None,
        takeover_ms=max(takeovers) if takeovers else None, setup_p99_ms=None,
        longest_gap_ms=gap, unfinished_calls=unfinished))}
    page = _met(criteria, SoFar(attempted=attempted, successful=successful, failed=failed,
                                takeovers_ms=tuple(takeovers), longest_gap_ms=gap,
                                finished=True))
    for name, met in page.items():
        if name == "min_success_ratio" and unfinished:
            continue  # the page judges finished calls; the report counts unfinished ones too
        if met is not None:
            assert met == report[name], name
        else:
            assert not report[name], name  # pending at the end: never measured, so failed
