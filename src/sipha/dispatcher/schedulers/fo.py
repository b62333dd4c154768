"""`fo`: IPVS weighted failover (``ip_vs_fo.c``): the eligible destination with the highest
weight takes every call; when it goes, the next heaviest does. Load is ignored. Ties go to
configuration order (IPVS keeps the first of equal weights too).
"""

from __future__ import annotations

from .base import Destination, RequestKey, SchedulerBase, register


@register
class WeightedFailover(SchedulerBase):
    """IPVS ``fo``: highest weight wins."""

    __slots__ = ()
    name = "fo"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        best: Destination | None = None
        for d in self._dests:
            if not d.usable or d.weight <= 0 or d.id in exclude:
                continue
            if best is None or d.weight > best.weight:
                best = d
        return best
