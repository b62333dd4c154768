"""`lc`: IPVS least connection, with active calls as the connection count.

IPVS counts ``overhead = active * 256 + inactive``; a SIP dispatcher has no inactive
connections, so the overhead here is `active_calls` (dialogs plus pending INVITEs). Weight
only gates eligibility (0 = quiesced); `wlc` is the weighted form. Ties go to the earlier
destination in configuration order.
"""

from __future__ import annotations

from operator import attrgetter

from .base import Destination, RequestKey, SchedulerBase, eligible, register

_ACTIVE_CALLS = attrgetter("active_calls")


@register
class LeastConnection(SchedulerBase):
    """Fewest active calls."""

    __slots__ = ()

    name = "lc"

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        # The first smallest wins a tie: configuration order.
        return min(eligible(self._dests, exclude), key=_ACTIVE_CALLS, default=None)
