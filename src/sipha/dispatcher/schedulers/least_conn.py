"""The IPVS least-connection family, with active calls as the connection count.

IPVS counts ``overhead = active * 256 + inactive``; a SIP dispatcher has no inactive
connections, so the overhead here is `active_calls` (dialogs plus pending INVITEs).

* `lc`  - least connection: minimum C.
* `wlc` - weighted least connection: minimum C / W.
* `sed` - shortest expected delay: minimum (C + 1) / W; unlike wlc it prefers a heavy idle
  server over a light idle one.
* `nq`  - never queue: the first idle server (C == 0) if any, else as `sed`.

Ratios are compared by cross-multiplication (exact integers, no float ties). Ties go to the
earlier destination in configuration order.
"""

from __future__ import annotations

from .base import Destination, RequestKey, SchedulerBase, register


@register
class LeastConnection(SchedulerBase):
    """Fewest active calls."""

    __slots__ = ()

    name = "lc"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        best: Destination | None = None
        for d in self._dests:
            if not d.usable or d.weight <= 0 or d.id in exclude:
                continue
            if best is None or d.active_calls < best.active_calls:
                best = d
        return best


def _min_ratio(
    dests: tuple[Destination, ...], exclude: frozenset[str], extra: int
) -> Destination | None:
    """Eligible destination minimising (active_calls + extra) / weight; first on ties."""
    best: Destination | None = None
    best_num = best_w = 0
    for d in dests:
        w = d.weight
        if not d.usable or w <= 0 or d.id in exclude:
            continue
        num = d.active_calls + extra
        # num/w < best_num/best_w  <=>  num*best_w < best_num*w  (weights are positive)
        if best is None or num * best_w < best_num * w:
            best, best_num, best_w = d, num, w
    return best


@register
class WeightedLeastConnection(SchedulerBase):
    """Fewest active calls per unit of weight."""

    __slots__ = ()

    name = "wlc"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        return _min_ratio(self._dests, exclude, 0)


@register
class ShortestExpectedDelay(SchedulerBase):
    """Minimum (active_calls + 1) / weight."""

    __slots__ = ()

    name = "sed"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        return _min_ratio(self._dests, exclude, 1)


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
        return _min_ratio(self._dests, exclude, 1)
