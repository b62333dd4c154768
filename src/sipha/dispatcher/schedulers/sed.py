"""`sed`: IPVS shortest expected delay: the minimum ``(active_calls + 1) / weight``.

Counting the call about to be placed makes a heavy idle server win over a light idle one,
where `wlc` would call them equal.
"""

from __future__ import annotations

from .base import Destination, RequestKey, SchedulerBase, register
from .picking import min_ratio


@register
class ShortestExpectedDelay(SchedulerBase):
    """Minimum (active_calls + 1) / weight."""

    __slots__ = ()

    name = "sed"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        return min_ratio(self._dests, exclude, 1)
