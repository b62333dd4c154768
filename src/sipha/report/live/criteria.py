"""Live verdicts: every ``[expect]`` criterion judged on what a run has measured so far.

The report judges a run once, at the end (:func:`sipha.common.expect.evaluate`). While it runs,
the page shows for each criterion the verdict the run would get if it ended now with every call
in flight still completing (``met`` True or False), or ``None`` (pending) when there is nothing
to judge yet or only the end can tell:

* failed calls, takeovers and the longest gap without an answer only grow: once over their
  bound they stay failed;
* the success ratio is that of the calls finished so far (calls in flight are neither);
* calls left unfinished are only known when the load is over: pending until then;
* no takeover seen yet although the plan bounds one: pending (the report fails it if none
  comes).

The whole-run p99 is never above the largest per-second p99 (a mixture of distributions has no
more than 1 % of its mass above a value that bounds each part's 99th percentile), so the largest
per-second p99 within the bound is a pass; above it, the page waits for the report.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipha.common.expect import CRITERIA, Criteria

__all__ = ["SoFar", "live_criteria"]


@dataclass(frozen=True, slots=True)
class SoFar:
    """What a run has measured until now (all calls of all testers, run clock)."""

    attempted: int
    successful: int
    failed: int
    takeovers_ms: tuple[float, ...] = ()
    longest_gap_ms: float | None = None  # None: no answered-slot bitmap (SIPp only) or no answer
    setup_p99_ms_max: float | None = None  # largest per-second p99 seen; None: none measured
    finished: bool = False  # the load is over: no call is in flight any more


def live_criteria(criteria: Criteria, now: SoFar) -> list[dict[str, object]]:
    """One row per criterion set, in :data:`CRITERIA` order: name, bound, measured, met."""
    out: list[dict[str, object]] = []
    for name in CRITERIA:
        bound = getattr(criteria, name)
        if bound is None:
            continue
        measured, met = _judge(name, float(bound), now)
        out.append({"name": name, "bound": bound,
                    "measured": None if measured is None else round(measured, 4), "met": met})
    return out


def _judge(name: str, bound: float, now: SoFar) -> tuple[float | None, bool | None]:
    if name == "max_failed_calls":
        return float(now.failed), now.failed <= bound
    if name == "min_success_ratio":
        finished = now.successful + now.failed
        if not finished:
            return None, None
        ratio = now.successful / finished
        return ratio, ratio >= bound
    if name == "max_takeover_ms":
        if not now.takeovers_ms:
            return None, None
        worst = max(now.takeovers_ms)
        return worst, worst <= bound
    if name == "max_longest_gap_ms":
        if now.longest_gap_ms is None:
            return None, None
        return now.longest_gap_ms, now.longest_gap_ms <= bound
    if name == "max_setup_p99_ms":
        p99 = now.setup_p99_ms_max
        if p99 is None:
            return None, None
        return p99, True if p99 <= bound else None
    if name != "max_unfinished_calls":
        return None, None  # measured only by the report (e.g. failed registrations)
    in_flight = max(0, now.attempted - now.successful - now.failed)
    return float(in_flight), (in_flight <= bound) if now.finished else None
