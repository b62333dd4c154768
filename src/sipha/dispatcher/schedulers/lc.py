"""`lc`: IPVS least connection, with active calls as the connection count.

IPVS counts ``overhead = active * 256 + inactive``; a SIP dispatcher has no inactive
connections, so the overhead here is `active_calls` (dialogs plus pending INVITEs). Weight
only gates eligibility (0 = quiesced); `wlc` is the weighted form. Ties go to the earlier
destination in configuration order.
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
