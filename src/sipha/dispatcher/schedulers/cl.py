"""`cl`: Kamailio algorithm 10 (call load).

The destination with the fewest active calls among those below their `maxload` (0 =
unlimited); None when all are full, so the dispatcher answers 503 instead of overloading a
server. Active calls are counted by Call-ID (dialogs plus pending INVITEs), as Kamailio
does. Ties go to configuration order.
"""

from __future__ import annotations

from .base import Destination, RequestKey, SchedulerBase, register


@register
class CallLoad(SchedulerBase):
    """Fewest active calls among destinations under their maxload."""

    __slots__ = ()
    name = "cl"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        best: Destination | None = None
        for d in self._dests:
            if not d.usable or d.weight <= 0 or d.id in exclude:
                continue
            if d.maxload and d.active_calls >= d.maxload:
                continue
            if best is None or d.active_calls < best.active_calls:
                best = d
        return best
