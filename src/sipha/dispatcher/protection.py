"""Per-source request rate limiting with a ban list, like Kamailio's pike and htable modules.

Theory of operation
-------------------
Only requests that start something count (Kamailio configs call ``pike_check_req()`` only for
requests without a To tag): an initial INVITE, REGISTER, OPTIONS, ... An ACK, a CANCEL or any
request inside a dialog (a To tag) is never counted nor refused, so a caller making 20 calls/s
(INVITE, ACK, BYE: 60 requests/s) is not throttled by a limit of 50 initial requests/s, and a
throttled source can still end the calls it has.

Counting uses fixed windows per source IP: at most ``limit`` initial requests in each
``window`` seconds; the rest are refused until the window turns. A source over the limit in
``ban_after`` windows in a row goes on the ban list for ``ban_time`` seconds (htable's
``autoexpire``): its initial requests are refused without being counted, whatever the window.
A window within the limit clears the strikes.

Memory is bounded: the counts hold the sources of the current window only (cleared as it
turns, so a flood of spoofed sources costs one window), the strikes only sources that were
over the limit in the last window, and the ban list at most ``max_banned`` entries (the oldest
ban goes first). Pure: time comes in as ``now``.
"""

from __future__ import annotations

import enum

__all__ = ["RateLimiter", "Verdict", "counted"]

_NEVER_COUNTED = frozenset({"ACK", "CANCEL"})


def counted(method: str, *, in_dialog: bool) -> bool:
    """Whether a request counts against its source's rate: initial requests only (no To tag),
    never an ACK or a CANCEL (they belong to a transaction already admitted)."""
    return not in_dialog and method not in _NEVER_COUNTED


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    THROTTLED = "throttled"  # over the limit in this window
    BANNED = "banned"  # on the ban list


class RateLimiter:
    """``check(ip, now)`` for each initial request; see the module docstring.

    Raises ValueError on construction for a limit, window, ban_after or ban_time that is not
    positive.
    """

    __slots__ = (
        "_banned",
        "_counts",
        "_strikes",
        "_window_start",
        "ban_after",
        "ban_time",
        "bans",
        "limit",
        "max_banned",
        "refused",
        "window",
    )

    def __init__(
        self,
        limit: int,
        window: float = 1.0,
        *,
        ban_after: int = 3,
        ban_time: float = 300.0,
        max_banned: int = 100_000,
    ) -> None:
        if limit <= 0 or window <= 0 or ban_after <= 0 or ban_time <= 0 or max_banned <= 0:
            raise ValueError("rate limit, window, ban_after, ban_time and max_banned must be > 0")
        self.limit = limit
        self.window = window
        self.ban_after = ban_after
        self.ban_time = ban_time
        self.max_banned = max_banned
        self._counts: dict[str, int] = {}
        self._strikes: dict[str, int] = {}
        self._banned: dict[str, float] = {}  # ip -> ban end, in the order the bans began
        self._window_start = 0.0
        self.refused = 0
        self.bans = 0

    def check(self, ip: str, now: float) -> Verdict:
        """Count one initial request from ``ip`` and say whether it may pass."""
        if now - self._window_start >= self.window:
            self._turn(now)
        until = self._banned.get(ip)
        if until is not None:
            if now < until:
                self.refused += 1
                return Verdict.BANNED
            del self._banned[ip]
        counts = self._counts
        n = counts.get(ip, 0) + 1
        counts[ip] = n
        if n > self.limit:
            self.refused += 1
            return Verdict.THROTTLED
        return Verdict.ALLOWED

    def allow(self, ip: str, now: float) -> bool:
        """``check(ip, now)`` is ALLOWED."""
        return self.check(ip, now) is Verdict.ALLOWED

    def banned(self, ip: str, now: float) -> bool:
        """Whether ``ip`` is on the ban list at ``now``."""
        until = self._banned.get(ip)
        return until is not None and now < until

    def _turn(self, now: float) -> None:
        # Strikes for the window that ends: consecutive windows over the limit ban the source.
        strikes: dict[str, int] = {}
        for ip, n in self._counts.items():
            if n > self.limit:
                s = self._strikes.get(ip, 0) + 1
                if s >= self.ban_after:
                    self._ban(ip, now)
                else:
                    strikes[ip] = s
        # A window that was skipped (no traffic at all) was within the limit for everyone.
        if now - self._window_start >= 2 * self.window:
            strikes.clear()
        self._strikes = strikes
        self._counts.clear()
        self._window_start = now

    def _ban(self, ip: str, now: float) -> None:
        banned = self._banned
        banned.pop(ip, None)
        if len(banned) >= self.max_banned:
            for old in [k for k, until in banned.items() if until <= now]:
                del banned[old]
            while len(banned) >= self.max_banned:
                del banned[next(iter(banned))]
        banned[ip] = now + self.ban_time
        self.bans += 1

    @property
    def tracked_sources(self) -> int:
        """Sources held in memory (counted this window, with strikes, or banned)."""
        return len(self._counts) + len(self._strikes) + len(self._banned)
