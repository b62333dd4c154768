"""`rr`: round robin (Kamailio algorithm 4, IPVS ``rr``).

A cursor walks the configured list; each pick takes the first eligible destination at or
after the cursor and moves the cursor past it. Ineligible and excluded destinations are
skipped without losing the rotation, so N eligible servers each get exactly 1/N of picks.
"""

from __future__ import annotations

from .base import Destination, RequestKey, SchedulerBase, register


@register
class RoundRobin(SchedulerBase):
    """Each eligible destination in turn."""

    __slots__ = ("_cursor",)

    name = "rr"

    def _rebuild(self) -> None:
        # Keep the rotation position across health flaps; clamp after membership changes.
        cursor = getattr(self, "_cursor", 0)
        self._cursor = cursor % len(self._dests) if self._dests else 0

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        dests = self._dests
        n = len(dests)
        start = self._cursor
        for step in range(n):
            i = start + step
            if i >= n:
                i -= n
            d = dests[i]
            if d.usable and d.weight > 0 and d.id not in exclude:
                self._cursor = i + 1 if i + 1 < n else 0
                return d
        return None
