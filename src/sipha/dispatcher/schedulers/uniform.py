"""`random`: Kamailio algorithm 6, uniform over the eligible destinations.

Weight only gates eligibility (0 = quiesced); `rweight` is the weighted form. The draw comes
from the injected `random.Random`. (The module is not named ``random`` so that it can never
be mistaken for the standard library's.)
"""

from __future__ import annotations

from .base import Destination, RequestKey, SchedulerBase, eligible, register


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
