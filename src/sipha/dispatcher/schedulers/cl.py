"""`cl`: Kamailio algorithm 10 (call load).

The destination with the fewest active calls among those below their `maxload` (0 =
unlimited); None when all are full, so the dispatcher answers 503 instead of overloading a
server. Active calls are counted by Call-ID (dialogs plus pending INVITEs), as Kamailio
does. Ties go to configuration order.
"""

from __future__ import annotations

from operator import attrgetter

from .base import Destination, RequestKey, SchedulerBase, eligible, register

_ACTIVE_CALLS = attrgetter("active_calls")


@register
class CallLoad(SchedulerBase):
    """Fewest active calls among destinations under their maxload."""

    __slots__ = ()
    name = "cl"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        under = [d for d in eligible(self._dests, exclude)
                 if not d.maxload or d.active_calls < d.maxload]
        return min(under, key=_ACTIVE_CALLS, default=None)  # ties: configuration order
