"""Serial schedulers: always the same preferred destination until it is unusable or full.

* `prio` - Kamailio algorithm 8 (serial forking ordered by priority): the *highest*
  `priority` value first, as Kamailio's dispatch.c keeps each set sorted by priority
  descending; on failover (`exclude`) the next one down. Ties go to configuration order.
  (`srv` is the other way round: DNS SRV prefers the lowest value.)
* `fo`   - IPVS weighted failover: the eligible destination with the highest weight.
* `ovf`  - IPVS weighted overflow: the highest-weight destination whose `active_calls` is
  below its weight; IPVS uses the weight as the connection limit, so when the primary is
  full the next-heaviest takes the overflow. None when every destination is full.

All of them skip weight 0 (quiesced) like every other scheduler here.
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
