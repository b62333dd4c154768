"""`lat`: Kamailio algorithm 13 (latency), simplified.

The lowest smoothed probe latency wins; destinations not yet measured rank after all
measured ones; ties go to the fewest active calls, then configuration order.
"""

from __future__ import annotations

from .base import Destination, RequestKey, SchedulerBase, register


@register
class LowestLatency(SchedulerBase):
    """Lowest latency_ms; ties by fewest active calls."""

    __slots__ = ()
    name = "lat"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        best: Destination | None = None
        best_rank: tuple[bool, float, int] = (True, 0.0, 0)
        for d in self._dests:
            if not d.usable or d.weight <= 0 or d.id in exclude:
                continue
            lat = d.latency_ms
            rank = (lat is None, 0.0 if lat is None else lat, d.active_calls)
            if best is None or rank < best_rank:
                best, best_rank = d, rank
        return best
