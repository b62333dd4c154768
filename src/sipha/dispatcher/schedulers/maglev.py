"""`mh`: Maglev hashing (Eisenbud et al., NSDI 2016; IPVS ``ip_vs_mh.c``).

Theory of operation
-------------------
Each destination derives, from its id only, a permutation of the M table slots
(``offset + j * skip mod M``, M prime so every skip generates all slots). Destinations take
turns claiming their next unclaimed preferred slot until the table is full; a destination
with weight w takes ``w / gcd`` turns per round (IPVS's weighted variant), so its share of
slots is proportional to weight. A pick is one hash and one table lookup: O(1) whatever
the number of destinations, which is the point of Maglev over rendezvous hashing.

Disruption: when a destination leaves (or turns unusable) the table is rebuilt. Its slots
go to the others, spread evenly because each fills them from its own permutation; but
because the turn-taking shifts slightly, a small fraction of *other* slots also change
owner (the paper measures a few percent). Rendezvous (`hashing`) moves none; Maglev trades
that for O(1) lookups and near-perfect balance.

Options: ``table_size`` (prime, default 65537; the paper wants M >> 100 * servers),
``key``: the request field hashed, one of `KEY_FIELDS` (default ``call_id``).

If the looked-up destination is excluded (failover) or became ineligible without a hook
call, the pick falls back to weighted rendezvous over the eligible ones, which is stable
per key and spreads the fallback load.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from math import gcd
from typing import ClassVar

from .base import Destination, RequestKey, SchedulerBase, option_int, register
from .stablehash import rendezvous_pick, seed_of, stable_hash64

DEFAULT_TABLE_SIZE = 65537

KEY_FIELDS: Mapping[str, Callable[[RequestKey], str]] = {
    "call_id": lambda k: k.call_id,
    "from_user": lambda k: k.from_user,
    "to_user": lambda k: k.to_user,
    "ruri": lambda k: k.ruri,
    "ruri_user": lambda k: k.ruri_user,
    "auth_user": lambda k: k.call_id if k.auth_user is None else k.auth_user,
    "source": lambda k: k.source[0],
}


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    f = 3
    while f * f <= n:
        if n % f == 0:
            return False
        f += 2
    return True


def build_table(dests: tuple[Destination, ...], size: int) -> list[int]:
    """Maglev lookup table: slot -> index into `dests`, over usable weight > 0 ones.

    Returns an empty list when no destination qualifies.
    """
    members = [i for i, d in enumerate(dests) if d.usable and d.weight > 0]
    if not members:
        return []
    g = 0
    for i in members:
        g = gcd(g, dests[i].weight)
    turns = [dests[i].weight // g for i in members]
    nxt = [stable_hash64(dests[i].id, b"sipha-mh-offset") % size for i in members]
    skips = [stable_hash64(dests[i].id, b"sipha-mh-skip") % (size - 1) + 1 for i in members]
    table = [-1] * size
    filled = 0
    while True:
        for k, owner in enumerate(members):
            skip = skips[k]
            c = nxt[k]
            for _ in range(turns[k]):
                while table[c] >= 0:
                    c += skip
                    if c >= size:
                        c -= size
                table[c] = owner
                filled += 1
                if filled == size:
                    return table
            nxt[k] = c


@register
class Maglev(SchedulerBase):
    """Maglev consistent hashing with an O(1) lookup table."""

    __slots__ = ("_fields", "_key_of", "_seeds", "_size", "_table")

    name = "mh"
    option_names: ClassVar[frozenset[str]] = frozenset({"table_size", "key"})

    def _configure(self, options: Mapping[str, object]) -> None:
        size = option_int(options, "table_size", DEFAULT_TABLE_SIZE)
        if not _is_prime(size):
            raise ValueError(f"option 'table_size' must be a prime, got {size}")
        field = options.get("key", "call_id")
        if not isinstance(field, str) or field not in KEY_FIELDS:
            raise ValueError(f"option 'key' must be one of {', '.join(KEY_FIELDS)}, got {field!r}")
        self._size = size
        self._key_of = KEY_FIELDS[field]
        self._fields = frozenset({field, "call_id"} if field == "auth_user" else {field})

    @property
    def key_fields(self) -> frozenset[str]:
        return self._fields

    def _rebuild(self) -> None:
        self._seeds = tuple(seed_of(d.id) for d in self._dests)
        self._table = build_table(self._dests, self._size)

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        key_hash = stable_hash64(self._key_of(key))
        table = self._table
        if table:
            d = self._dests[table[key_hash % self._size]]
            if d.usable and d.weight > 0 and d.id not in exclude:
                return d
        return rendezvous_pick(self._dests, self._seeds, key_hash, exclude)
