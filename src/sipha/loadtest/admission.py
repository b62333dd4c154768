"""What the controller accepts from an agent: every decoded report bounded by the plan.

Theory of operation
-------------------
The protocol's schema (:mod:`sipha.loadtest.protocol`) already refuses frames of the wrong
shape, and :meth:`IntervalStats.from_wire` refuses negative counters, reasons that do not add
up and histograms of another shape (checked before hdrh allocates, :mod:`hdrblob`).  What is
left is *plausibility against the plan*, so that one report can neither make the controller
write millions of rows nor put millions of fake calls into the results:

* a second is at most the run's last possible second (duration + drain timeout) plus
  :data:`SKEW`, and never more than :data:`SKEW` ahead of the controller's own clock;
* each per-second counter is at most :attr:`ReportBounds.per_second`, from the plan's peak
  rate (a hundredfold margin covers Poisson bursts and failures that pile up after a
  stall), its users (a registration burst at the start) and a floor;
* a Done's totals are at most that per-second bound times the seconds elapsed.

:func:`check_report` and :func:`check_totals` return the reason for refusing, or None; the
caller drops the frame and counts the reason (never raises out of the receive loop).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Final

from sipha.loadtest.protocol import Plan
from sipha.loadtest.stats import IntervalStats

__all__ = ["SKEW", "ReportBounds", "check_report", "check_totals"]

SKEW: Final = 30.0
"""Seconds of clock difference and delivery delay tolerated between an agent and its
controller."""

_EVENTS: Final = ("calls_attempted", "calls_successful", "calls_failed", "transactions_ok",
                  "transactions_failed")
_RETRANSMISSIONS_PER_EVENT: Final = 16  # Timer A/E doublings up to 64*T1, with margin
_GAUGE_SECONDS: Final = 1000  # concurrent calls: a thousand seconds of arrivals
_FLOOR: Final = 1000


@dataclasses.dataclass(frozen=True, slots=True)
class ReportBounds:
    """The limits one agent's reports must respect (see the module docstring)."""

    last_second: int | None  # None: the plan has no duration (bounded by the clock only)
    per_second: int

    @classmethod
    def from_plan(cls, plan: Plan) -> ReportBounds:
        """Bounds for any agent of ``plan`` (the whole plan's rate: a share is smaller)."""
        peak = plan.rate if plan.ramp is None else max(plan.rate, plan.ramp.max)
        users = plan.users.count if plan.users is not None else 0
        per_second = math.ceil(peak * 100) + users + _FLOOR
        last = None
        if plan.duration is not None:
            last = math.ceil(plan.duration + plan.options.drain_timeout + SKEW)
        return cls(last_second=last, per_second=per_second)


def _counters_over(stats: IntervalStats, limit: int) -> str | None:
    for name in _EVENTS:
        value = getattr(stats, name)
        if value > limit:
            return f"{name} {value} over {limit}"
    if stats.retransmissions > limit * _RETRANSMISSIONS_PER_EVENT:
        return f"retransmissions {stats.retransmissions} over {limit * _RETRANSMISSIONS_PER_EVENT}"
    if stats.concurrent_calls > limit * _GAUGE_SECONDS:
        return f"concurrent_calls {stats.concurrent_calls} over {limit * _GAUGE_SECONDS}"
    return None


def check_report(bounds: ReportBounds, second: int, stats: IntervalStats,
                 *, elapsed: float) -> str | None:
    """Why the report of ``second`` cannot be true, ``elapsed`` seconds after the common
    start (None: accept it)."""
    if bounds.last_second is not None and second > bounds.last_second:
        return f"second {second} after the run's last possible second {bounds.last_second}"
    if second > elapsed + SKEW:
        return f"second {second} is in the future ({elapsed:.0f} s elapsed)"
    return _counters_over(stats, bounds.per_second)


def check_totals(bounds: ReportBounds, totals: IntervalStats, *, elapsed: float) -> str | None:
    """Why a Done's ``totals`` cannot be true ``elapsed`` seconds after the start."""
    seconds = max(0, math.ceil(elapsed + SKEW))
    return _counters_over(totals, bounds.per_second * seconds)
