"""`wlc`: IPVS weighted least connection: the minimum active calls per unit of weight.

An idle light server and an idle heavy one tie at 0 (configuration order decides); `sed`
breaks that tie towards the heavy one. Active calls are dialogs plus pending INVITEs.
"""

from __future__ import annotations

from .base import Destination, RequestKey, SchedulerBase, register
from .picking import min_ratio


@register
class WeightedLeastConnection(SchedulerBase):
    """Fewest active calls per unit of weight."""

    __slots__ = ()

    name = "wlc"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        return min_ratio(self._dests, exclude, 0)
