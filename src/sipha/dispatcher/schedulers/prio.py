"""`prio`: Kamailio algorithm 8, serial forking ordered by priority.

Kamailio's dispatch.c keeps each set sorted by priority, *highest value first*, and
algorithm 8 walks that order: the highest-priority eligible destination takes every call,
and on failover (`exclude`) the next one down. Ties go to configuration order. (`srv` is
the other way round: DNS SRV prefers the lowest value.) Weight only gates eligibility:
0 = quiesced.
"""

from __future__ import annotations

from .base import Destination, RequestKey, SchedulerBase, register


@register
class Priority(SchedulerBase):
    """Kamailio serial dispatching by priority: highest value first."""

    __slots__ = ()
    name = "prio"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        best: Destination | None = None
        for d in self._dests:
            if not d.usable or d.weight <= 0 or d.id in exclude:
                continue
            if best is None or d.priority > best.priority:
                best = d
        return best
