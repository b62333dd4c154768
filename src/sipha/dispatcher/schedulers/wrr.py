"""`wrr`: interleaved weighted round robin, exactly as IPVS ``ip_vs_wrr.c``.

The current weight `cw` starts at the maximum weight and drops by the gcd of all weights
after each pass over the list; a pass yields every destination whose weight is >= `cw`.
One full cycle (max/gcd passes) yields each destination `weight/gcd` times, interleaved:
weights A1 B1 C2 D2 give C D A B C D, C D A B C D, ...

Weights, gcd and maximum are taken over usable destinations and recomputed on health and
membership changes (IPVS recomputes on reweight). A destination that is excluded or turned
unusable without a hook call is skipped inside the pass, like IPVS skips overloaded ones.
"""

from __future__ import annotations

from math import gcd

from .base import Destination, RequestKey, SchedulerBase, register


@register
class WeightedRoundRobin(SchedulerBase):
    """IPVS interleaved weighted round robin."""

    __slots__ = ("_cw", "_gcd", "_index", "_max_weight")

    name = "wrr"

    def _rebuild(self) -> None:
        weights = [d.weight for d in self._dests if d.usable and d.weight > 0]
        g = 0
        for w in weights:
            g = gcd(g, w)
        self._gcd = g
        self._max_weight = max(weights, default=0)
        # IPVS resets the mark on reweight: start a fresh cycle.
        self._index = -1
        self._cw = 0

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        dests = self._dests
        n = len(dests)
        if self._max_weight == 0:
            return None
        # Guarantee termination: something must be able to match in a full cycle.
        if not any(d.usable and d.weight > 0 and d.id not in exclude for d in dests):
            return None
        i = self._index
        cw = self._cw
        # A full cycle is n * (max/gcd) steps; two cycles bound the search even if weights
        # were changed in place without a rebuild.
        for _ in range(2 * n * (self._max_weight // self._gcd + 1)):
            i += 1
            if i >= n:
                i = 0
            if i == 0:
                cw -= self._gcd
                if cw <= 0:
                    cw = self._max_weight
            d = dests[i]
            if d.weight >= cw and d.usable and d.weight > 0 and d.id not in exclude:
                self._index = i
                self._cw = cw
                return d
        self._index = i
        self._cw = cw
        return None
