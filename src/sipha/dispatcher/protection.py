"""Per-source request rate limiting, like Kamailio's pike module.

Fixed windows per source IP: at most `limit` requests in each `window` seconds; the rest are
refused until the window turns. One dict entry per source seen in the current or previous
window; the table is cleared as windows turn, so a flood of spoofed sources costs memory for
one window only. Pure: time comes in as ``now``.
"""

from __future__ import annotations

__all__ = ["RateLimiter"]


class RateLimiter:
    """``allow(ip, now)`` is False once ``ip`` sent more than `limit` requests this window."""

    __slots__ = ("_counts", "_window_start", "limit", "refused", "window")

    def __init__(self, limit: int, window: float = 1.0) -> None:
        if limit <= 0 or window <= 0:
            raise ValueError("rate limit and window must be positive")
        self.limit = limit
        self.window = window
        self._counts: dict[str, int] = {}
        self._window_start = 0.0
        self.refused = 0

    def allow(self, ip: str, now: float) -> bool:
        if now - self._window_start >= self.window:
            self._window_start = now
            self._counts.clear()
        counts = self._counts
        n = counts.get(ip, 0) + 1
        counts[ip] = n
        if n > self.limit:
            self.refused += 1
            return False
        return True

    @property
    def tracked_sources(self) -> int:
        return len(self._counts)
