"""Randomised schedulers; all randomness comes from the injected `random.Random`.

* `random`  - Kamailio algorithm 6: uniform over eligible destinations (weight only gates
  eligibility: 0 = quiesced).
* `rweight` - Kamailio algorithm 11 (relative weight): weighted random over the eligible
  destinations; excluded or unusable ones drop out and the rest are renormalised, so their
  relative shares are preserved. Option ``latency_factor`` (bool, default False) scales each
  weight by ``fastest_latency / latency`` so a server twice as slow gets half its share
  (unmeasured servers are not penalised), in the spirit of Kamailio's congestion-aware
  weighting.
* `srv`     - DNS SRV selection (RFC 2782): the lowest `priority` value that has an eligible
  destination, weighted random inside that group.
* `twos`    - IPVS weighted random twos choice: draw two destinations by weight (possibly the
  same), keep the one with fewer active calls per unit of weight; ties keep the first draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from .base import Destination, RequestKey, SchedulerBase, eligible, option_bool, register


def _by_weight(cands: Sequence[Destination], total: int, r: int) -> Destination:
    """The destination whose cumulative-weight interval contains `r` in [0, total)."""
    for d in cands:
        r -= d.weight
        if r < 0:
            return d
    raise AssertionError("r outside [0, total)")  # pragma: no cover - callers draw < total


@register
class Uniform(SchedulerBase):
    """Uniform random choice."""

    __slots__ = ()
    name = "random"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        cands = eligible(self._dests, exclude)
        if not cands:
            return None
        return cands[self._rng.randrange(len(cands))]


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
            return _by_weight(cands, total, self._rng.randrange(total))
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
        return _by_weight(group, total, self._rng.randrange(total))


@register
class WeightedTwosChoice(SchedulerBase):
    """IPVS ``twos``: power of two weighted random choices."""

    __slots__ = ()
    name = "twos"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        cands = eligible(self._dests, exclude)
        if not cands:
            return None
        total = sum(d.weight for d in cands)
        first = _by_weight(cands, total, self._rng.randrange(total))
        second = _by_weight(cands, total, self._rng.randrange(total))
        # second.C / second.W < first.C / first.W, by cross-multiplication.
        if second.active_calls * first.weight < first.active_calls * second.weight:
            return second
        return first
