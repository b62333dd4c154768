"""Shared builders for the scheduler tests (imported by module name; tests/ has no packages)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from sipha.dispatcher.schedulers import Destination, RequestKey, Scheduler, create

ALL_NAMES = frozenset(
    {
        "rr", "wrr", "lc", "wlc", "sed", "nq", "dh", "sh", "mh", "fo", "ovf", "twos",
        "hash-callid", "hash-from", "hash-to", "hash-ruri", "hash-authuser",
        "random", "prio", "srv", "cl", "rweight", "lat",
    }
)  # fmt: skip

# mh with the default 65537-slot table is fine but slower to rebuild in bulk tests.
SMALL_OPTIONS: dict[str, dict[str, object]] = {"mh": {"table_size": 1021}}


def dests(*weights: int) -> list[Destination]:
    """Destinations A, B, C... with the given weights."""
    return [Destination(id=chr(ord("A") + i), weight=w) for i, w in enumerate(weights)]


def key(n: int | str = 0, *, auth_user: str | None = None) -> RequestKey:
    """A request key whose every field varies with `n`."""
    return RequestKey(
        call_id=f"call-{n}@host",
        from_user=f"from{n}",
        to_user=f"to{n}",
        ruri=f"sip:ruri{n}@example.com",
        ruri_user=f"ruri{n}",
        auth_user=auth_user,
        source=(f"10.{hash_free(n) % 256}.0.1", 5060),
    )


def hash_free(n: int | str) -> int:
    """A deterministic int from n without Python's salted hash()."""
    return n if isinstance(n, int) else sum(map(ord, n))


def make(
    name: str,
    ds: Sequence[Destination],
    *,
    seed: int = 1,
    options: Mapping[str, object] | None = None,
    **more: object,
) -> Scheduler:
    opts = {**SMALL_OPTIONS.get(name, {}), **(options or {}), **more}
    return create(name, ds, rng=random.Random(seed), options=opts)


def picks(
    sched: Scheduler, n: int, keys: Callable[[int], RequestKey] = lambda i: key(i)
) -> list[str]:
    out = []
    for i in range(n):
        d = sched.pick(key=keys(i), now=float(i))
        assert d is not None
        out.append(d.id)
    return out


def shares(ids: Sequence[str]) -> dict[str, float]:
    c = Counter(ids)
    return {k: v / len(ids) for k, v in sorted(c.items())}
