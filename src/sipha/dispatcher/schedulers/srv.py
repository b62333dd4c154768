"""`srv`: DNS SRV selection (RFC 2782): the lowest `priority` value that has an eligible
destination, weighted random inside that group.

This is DNS's reading of priority (lower is preferred), the opposite of Kamailio's `prio`.
"""

from __future__ import annotations

from .base import Destination, RequestKey, SchedulerBase, eligible, register
from .picking import by_weight


@register
class SrvWeighted(SchedulerBase):
    """RFC 2782: lowest priority group, weighted random within it."""

    __slots__ = ()
    name = "srv"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        cands = eligible(self._dests, exclude)
        if not cands:
            return None
        top = min(d.priority for d in cands)
        group = [d for d in cands if d.priority == top]
        total = sum(d.weight for d in group)
        return by_weight(group, total, self._rng.randrange(total))
