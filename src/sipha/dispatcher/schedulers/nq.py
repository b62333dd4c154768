"""`nq`: IPVS never queue: the first idle server (no active calls) if there is one,
otherwise shortest expected delay (`sed`), so no call waits behind another while a server
sits idle."""

from __future__ import annotations

from .base import Destination, RequestKey, SchedulerBase, register
from .picking import min_ratio


@register
class NeverQueue(SchedulerBase):
    """An idle server if there is one, otherwise shortest expected delay."""

    __slots__ = ()

    name = "nq"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        for d in self._dests:
            if d.active_calls == 0 and d.usable and d.weight > 0 and d.id not in exclude:
                return d
        return min_ratio(self._dests, exclude, 1)
