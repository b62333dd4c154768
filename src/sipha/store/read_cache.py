"""A bounded cache of values read from the store, served only while the store is unreachable.

Theory of operation
-------------------
Every successful read (and every write's answer) refreshes the entry with the time it was
confirmed by the store. When neither the master nor a replica answers, a read is served from
the entry if it was confirmed at most `ttl` seconds ago: the answer is then at most `ttl`
seconds stale, the bound the operator configures (``cache_ttl``). Older entries are misses, so
a long outage turns into errors instead of ever-staler answers. The cache is pure: time is
passed in (`now`, monotonic seconds), so its rules are tested on virtual time.

Size is bounded by `max_entries`; the least recently confirmed entry goes first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Cached", "ReadCache"]

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Cached(Generic[V]):
    value: V
    confirmed_at: float


class ReadCache(Generic[V]):
    """Key -> last value confirmed by the store (see module docstring)."""

    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        if ttl < 0 or max_entries < 1:
            raise ValueError("ttl must be >= 0 and max_entries >= 1")
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Cached[V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, key: str, value: V, now: float) -> None:
        """Record `value` as confirmed by the store at `now`."""
        if self.ttl == 0:
            return
        self._entries[key] = Cached(value, now)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, key: str, now: float) -> Cached[V] | None:
        """The entry if confirmed within `ttl` of `now`, else None (and a stale one is
        dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now - entry.confirmed_at > self.ttl:
            del self._entries[key]
            return None
        return entry

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)
