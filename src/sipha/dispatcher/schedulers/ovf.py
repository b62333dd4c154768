"""`ovf`: IPVS weighted overflow (``ip_vs_ovf.c``): the highest-weight destination whose
`active_calls` is below its weight. IPVS uses the weight as the connection limit, so when
the primary is full the next-heaviest takes the overflow; None when every destination is
full (the dispatcher answers 503 rather than overload one).
"""

from __future__ import annotations

from .base import Destination, RequestKey, SchedulerBase, register


@register
class WeightedOverflow(SchedulerBase):
    """IPVS ``ovf``: highest weight with spare capacity (active_calls < weight)."""

    __slots__ = ()
    name = "ovf"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        best: Destination | None = None
        for d in self._dests:
            w = d.weight
            if not d.usable or w <= 0 or d.id in exclude or d.active_calls >= w:
                continue
            if best is None or w > best.weight:
                best = d
        return best
