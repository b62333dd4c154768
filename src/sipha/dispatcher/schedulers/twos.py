"""`twos`: IPVS weighted random twos choice (``ip_vs_twos.c``).

Draw two destinations by weight (possibly the same one), keep the one with fewer active
calls per unit of weight; ties keep the first draw. Two choices are enough to avoid the
herd behaviour of least-connection under stale counts while staying O(n).
"""

from __future__ import annotations

from .base import Destination, RequestKey, SchedulerBase, eligible, register
from .picking import by_weight


@register
class WeightedTwosChoice(SchedulerBase):
    """IPVS ``twos``: power of two weighted random choices."""

    __slots__ = ()
    name = "twos"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        cands = eligible(self._dests, exclude)
        if not cands:
            return None
        total = sum(d.weight for d in cands)
        first = by_weight(cands, total, self._rng.randrange(total))
        second = by_weight(cands, total, self._rng.randrange(total))
        # second.C / second.W < first.C / first.W, by cross-multiplication.
        if second.active_calls * first.weight < first.active_calls * second.weight:
            return second
        return first
