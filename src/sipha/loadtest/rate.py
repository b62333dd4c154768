"""Rate control: a ramped rate schedule and the arrival processes that follow it.

Theory of operation
-------------------
:class:`RateSchedule` is the plan: ``rate(t)`` calls/s at ``t`` seconds into the run, constant or
ramped (start, +step every interval, capped at max: the paper's "+10 calls/s every 10 minutes").
Its integral ``expected(t)`` is the number of calls the plan asks for by ``t``, in closed form.

An arrival process answers one question, ``due(t)``: how many new calls to start now.

* :class:`ConstantArrivals` starts call *k* (1-based) as soon as ``expected(t) > k - 1``: the
  count started is ``ceil(expected(t))``, so over any second the attempts equal the plan's
  integral to within one call, whatever the tick rate of the caller.  Deterministic.
* :class:`PoissonArrivals` draws exponential gaps at the rate in force at the previous arrival
  (injected ``random.Random``, seeded per agent), the usual "open" model of independent callers.

Both are pure: time is passed in, nothing reads a clock.
"""

from __future__ import annotations

import math
import random
from typing import Protocol

__all__ = ["Arrivals", "ConstantArrivals", "PoissonArrivals", "RateSchedule", "make_arrivals"]

_EPS = 1e-9


class RateSchedule:
    """``rate`` calls/s, or with a ramp: ``start`` + ``step`` every ``interval`` s, up to ``max``.

    Raises ``ValueError`` for negative rates, a non-positive interval, or ``max < start``.
    """

    __slots__ = ("_from", "_from_expected", "_rate_from", "interval", "max", "start", "step")

    def __init__(
        self,
        start: float,
        *,
        step: float = 0.0,
        interval: float = 1.0,
        max: float | None = None,
    ) -> None:
        if start < 0 or step < 0:
            raise ValueError("rates must be >= 0")
        if interval <= 0:
            raise ValueError("ramp interval must be > 0")
        top = start if max is None else max
        if top < start:
            raise ValueError(f"max rate {top} is below the start rate {start}")
        self.start = float(start)
        self.step = float(step) if top > start else 0.0
        self.interval = float(interval)
        self.max = float(top)
        # Set by `retarget`: from `_from` on, `_rate_from` calls/s, counted on top of the
        # calls the plan had asked for by then (so no burst and no gap at the switch).
        self._from = math.inf
        self._from_expected = 0.0
        self._rate_from = 0.0

    def retarget(self, t: float, rate: float) -> None:
        """From ``t`` on, a constant ``rate`` calls/s (an operator's change in a running load;
        the ramp, if any, ends). ``expected`` stays continuous at ``t``. Raises ValueError for
        a negative rate or a ``t`` before an earlier change."""
        if not math.isfinite(rate) or rate < 0:
            raise ValueError(f"rate {rate!r}: expected a number of calls/s >= 0")
        t = max(0.0, t)
        if t < self._from and math.isfinite(self._from):
            raise ValueError("a rate change cannot go back in time")
        self._from_expected = self.expected(t)
        self._from = t
        self._rate_from = float(rate)

    @property
    def changed_at(self) -> float:
        """When `retarget` took over (infinity: never)."""
        return self._from

    def rate(self, t: float) -> float:
        """Calls/s in force at ``t`` (seconds since the start; negative -> 0)."""
        if t < 0:
            return 0.0
        if t >= self._from:
            return self._rate_from
        if self.step == 0.0:
            return self.start
        k = math.floor(t / self.interval)
        return min(self.start + k * self.step, self.max)

    def _steps_to_max(self) -> float:
        # Number of whole intervals before the rate reaches max.
        n = (self.max - self.start) / self.step if self.step > 0.0 else math.inf
        return math.ceil(n - _EPS) if math.isfinite(n) else math.inf

    def expected(self, t: float) -> float:
        """Calls the plan asks for in ``[0, t)``: the integral of ``rate``."""
        if t <= 0:
            return 0.0
        if t >= self._from:
            return self._from_expected + (t - self._from) * self._rate_from
        if self.step == 0.0:
            return self.start * t
        k = math.floor(t / self.interval)
        m = self._steps_to_max()
        ramped = min(k, m)
        # Whole ramping intervals: arithmetic series start, start+step, ...
        total = self.interval * (ramped * self.start + self.step * ramped * (ramped - 1) / 2)
        if k > ramped:
            total += (k - ramped) * self.interval * self.max
        total += (t - k * self.interval) * self.rate(t)
        return total


class Arrivals(Protocol):
    """When to start calls."""

    def due(self, t: float) -> int:
        """How many calls to start now, ``t`` seconds into the run (non-decreasing ``t``)."""
        ...


class ConstantArrivals:
    """Evenly spaced calls following the schedule exactly (see the module docstring)."""

    __slots__ = ("schedule", "started")

    def __init__(self, schedule: RateSchedule) -> None:
        self.schedule = schedule
        self.started = 0

    def due(self, t: float) -> int:
        target = math.ceil(self.schedule.expected(t) - _EPS)
        n = target - self.started
        if n <= 0:
            return 0
        self.started = target
        return n


class PoissonArrivals:
    """Poisson arrivals at the schedule's rate (exponential gaps from an injected RNG)."""

    __slots__ = ("next_at", "rng", "schedule")

    def __init__(self, schedule: RateSchedule, rng: random.Random) -> None:
        self.schedule = schedule
        self.rng = rng
        self.next_at = self._gap(0.0)

    def _gap(self, t: float) -> float:
        rate = self.schedule.rate(t)
        while rate <= 0:
            # Nothing before the next ramp step (or ever, if the rate stays 0).
            if self.schedule.step == 0.0 or t >= self.schedule.changed_at:
                return math.inf
            t = (math.floor(t / self.schedule.interval) + 1) * self.schedule.interval
            rate = self.schedule.rate(t)
        return t + self.rng.expovariate(rate)

    def due(self, t: float) -> int:
        if self.next_at == math.inf and self.schedule.rate(t) > 0:
            self.next_at = self._gap(t)  # the rate was 0 and was changed since
        n = 0
        while self.next_at <= t:
            n += 1
            self.next_at = self._gap(self.next_at)
        return n


def make_arrivals(kind: str, schedule: RateSchedule, rng: random.Random) -> Arrivals:
    """``"constant"`` or ``"poisson"``; raises ``ValueError`` for another name."""
    if kind == "constant":
        return ConstantArrivals(schedule)
    if kind == "poisson":
        return PoissonArrivals(schedule, rng)
    raise ValueError(f"unknown arrival process {kind!r} (constant, poisson)")
