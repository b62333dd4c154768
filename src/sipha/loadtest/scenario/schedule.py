"""When client calls start: SIPp's rate options as a pure schedule.

``-r R -rp P`` starts R calls every P seconds (a rate of R/P calls per second).  With
``-rate_increase I`` the rate goes up by I (per P) every ``-rate_interval`` seconds; with
``-rate_max M`` the rate stops at M, and, as SIPp does, the run stops starting calls at the
increase that would pass M (``-no_rate_quit`` keeps it running at M instead).  Calls are spread
evenly: :meth:`RateSchedule.due` is the number of calls that should have started ``elapsed``
seconds into the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["RateSchedule"]


@dataclass(frozen=True, slots=True)
class RateSchedule:
    rate: float  # calls per ``period``
    period: float = 1.0
    increase: float = 0.0  # per ``interval``
    interval: float = 60.0
    rate_max: float | None = None
    quit_at_max: bool = True

    def __post_init__(self) -> None:
        if self.rate < 0 or self.period <= 0 or self.interval <= 0:
            raise ValueError("rate >= 0, period > 0 and interval > 0 are required")

    def _rate_of_step(self, k: int) -> float:
        r = self.rate + k * self.increase
        return min(r, self.rate_max) if self.rate_max is not None else r

    def quit_after(self) -> float | None:
        """Seconds into the run after which no call starts (None: never, by the rate)."""
        if not self.increase or self.rate_max is None or not self.quit_at_max:
            return None
        # The first step whose unclamped rate passes the maximum ends the run.
        k = max(1, math.floor((self.rate_max - self.rate) / self.increase) + 1)
        return k * self.interval

    def rate_at(self, elapsed: float) -> float:
        """Calls per second at ``elapsed``."""
        k = int(elapsed // self.interval) if self.increase else 0
        return self._rate_of_step(k) / self.period

    def due(self, elapsed: float) -> int:
        """Calls that should have started by ``elapsed`` seconds (the first at 0)."""
        if elapsed < 0:
            return 0
        if not self.increase:
            return math.floor(elapsed * self.rate / self.period + 1e-9) + 1
        k = int(elapsed // self.interval)
        total = sum(self._rate_of_step(i) for i in range(k)) * self.interval / self.period
        total += self._rate_of_step(k) / self.period * (elapsed - k * self.interval)
        return math.floor(total + 1e-9) + 1
