"""`rweight`: Kamailio algorithm 11 (relative weight): weighted random over the eligible
destinations.

Excluded or unusable destinations drop out and the rest are renormalised, so their relative
shares are preserved. Option ``latency_factor`` (bool, default False) scales each weight by
``fastest_latency / latency`` so a server twice as slow gets half its share (unmeasured
servers are not penalised), in the spirit of Kamailio's congestion-aware weighting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from .base import Destination, RequestKey, SchedulerBase, eligible, option_bool, register
from .picking import by_weight


@register
class RelativeWeight(SchedulerBase):
    """Weighted random, renormalised over what is eligible."""

    __slots__ = ("_latency_factor",)
    name = "rweight"
    option_names: ClassVar[frozenset[str]] = frozenset({"latency_factor"})

    def _configure(self, options: Mapping[str, object]) -> None:
        self._latency_factor = option_bool(options, "latency_factor", False)

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        cands = eligible(self._dests, exclude)
        if not cands:
            return None
        if not self._latency_factor:
            total = sum(d.weight for d in cands)
            return by_weight(cands, total, self._rng.randrange(total))
        measured = [d.latency_ms for d in cands if d.latency_ms is not None and d.latency_ms > 0]
        fastest = min(measured, default=0.0)
        weights = [
            d.weight * (fastest / d.latency_ms)
            if fastest and d.latency_ms is not None and d.latency_ms > 0
            else float(d.weight)
            for d in cands
        ]
        x = self._rng.random() * sum(weights)
        for d, w in zip(cands, weights, strict=True):
            x -= w
            if x < 0:
                return d
        return cands[-1]  # float rounding left x a hair above 0
