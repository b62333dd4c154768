"""`prio`: Kamailio algorithm 8, serial forking ordered by priority.

Kamailio's dispatch.c keeps each set sorted by priority, *highest value first*, and
algorithm 8 walks that order: the highest-priority eligible destination takes every call,
and on failover (`exclude`) the next one down. Ties go to configuration order. (`srv` is
the other way round: DNS SRV prefers the lowest value.) Weight only gates eligibility:
0 = quiesced.
"""

from __future__ import annotations

from operator import attrgetter

from .base import Destination, RequestKey, SchedulerBase, eligible, register

_PRIORITY = attrgetter("priority")


@register
class Priority(SchedulerBase):
    """Kamailio serial dispatching by priority: highest value first."""

    __slots__ = ()
    name = "prio"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        # The first largest wins a tie: configuration order.
        return max(eligible(self._dests, exclude), key=_PRIORITY, default=None)
