"""`fo`: IPVS weighted failover (``ip_vs_fo.c``): the eligible destination with the highest
weight takes every call; when it goes, the next heaviest does. Load is ignored. Ties go to
configuration order (IPVS keeps the first of equal weights too).
"""

from __future__ import annotations

from operator import attrgetter

from .base import Destination, RequestKey, SchedulerBase, eligible, register

_WEIGHT = attrgetter("weight")


@register
class WeightedFailover(SchedulerBase):
    """IPVS ``fo``: highest weight wins."""

    __slots__ = ()
    name = "fo"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        # The first largest wins a tie: configuration order.
        return max(eligible(self._dests, exclude), key=_WEIGHT, default=None)
