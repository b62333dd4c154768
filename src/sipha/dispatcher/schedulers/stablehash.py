"""Stable hashing and weighted rendezvous (highest random weight) selection.

Python's `hash()` is salted per process, so two dispatchers (or one after a restart) would
disagree; everything here derives from BLAKE2b, identical across processes and hosts.

Rendezvous hashing (Thaler & Ravishankar, 1998): every destination scores every key and the
highest score wins. Removing a destination only re-homes the keys it won, and each of those
goes to its own runner-up, which is spread over *all* remaining destinations; no other key
moves. The weighted form (Schindelhauer & Schomaker, 2005) scores ``-w / ln(h)`` with `h`
uniform in (0, 1), which gives each destination a share proportional to its weight while
keeping the same minimal-disruption property.

A key is hashed once (BLAKE2b, 64 bits) and combined with each destination's precomputed
64-bit seed by the splitmix64 finaliser, so a pick costs one digest plus a few integer
operations and one `log` per destination.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import blake2b
from math import log

from .base import Destination

_M64 = (1 << 64) - 1
_INV_2_53 = 2.0**-53


def stable_hash64(text: str, salt: bytes = b"") -> int:
    """A 64-bit hash of `text` that is the same in every process.

    Lone surrogates (from ``surrogateescape``-decoded wire bytes) are encoded as-is, so any
    str is accepted.
    """
    data = text.encode("utf-8", "surrogatepass")
    return int.from_bytes(blake2b(data, digest_size=8, person=salt[:16]).digest(), "little")


def mix64(x: int) -> int:
    """splitmix64 finaliser: a bijective avalanche of a 64-bit integer."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def seed_of(dest_id: str) -> int:
    """Per-destination rendezvous seed; depends only on the id, so it survives reweighting."""
    return stable_hash64(dest_id, b"sipha-hrw-seed")


def rendezvous_pick(
    dests: Sequence[Destination],
    seeds: Sequence[int],
    key_hash: int,
    exclude: frozenset[str],
) -> Destination | None:
    """The eligible destination with the highest weighted rendezvous score for `key_hash`.

    `seeds[i]` is `seed_of(dests[i].id)`. With `exclude` this yields the runner-up, which is
    where the key would go if the excluded destinations left: failover and removal agree.
    """
    best: Destination | None = None
    best_score = 0.0
    for d, seed in zip(dests, seeds, strict=True):
        w = d.weight
        if not d.usable or w <= 0 or d.id in exclude:
            continue
        # Top 53 bits -> a float uniform in (0, 1), never 0 or 1, so log() is finite and < 0.
        h = ((mix64(key_hash ^ seed) >> 11) + 0.5) * _INV_2_53
        score = -w / log(h)
        if best is None or score > best_score:
            best, best_score = d, score
    return best
