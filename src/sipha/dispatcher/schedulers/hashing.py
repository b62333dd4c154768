"""Hash-based schedulers: a key from the request always reaches the same destination.

Kamailio's hash algorithms (0 Call-ID, 1 From, 2 To, 3 Request-URI, 5 auth username) and
IPVS's ``dh`` (destination hashing, here the Request-URI user) and ``sh`` (source hashing).
Kamailio and IPVS take ``hash % n``, which on a membership change re-homes almost every key
and dumps a failed server's share on one neighbour. All of these use weighted rendezvous
hashing instead (see `stablehash`): a departing server's keys spread over all remaining
servers in proportion to weight, and no other key moves. Exclusion for failover yields the
key's runner-up, so retries are as sticky as first attempts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from .base import Destination, RequestKey, SchedulerBase, option_bool, register
from .stablehash import rendezvous_pick, seed_of, stable_hash64


class _RendezvousScheduler(SchedulerBase):
    """Weighted rendezvous over `key_text(key)`; subclasses choose the key."""

    __slots__ = ("_seeds",)

    def _rebuild(self) -> None:
        self._seeds = tuple(seed_of(d.id) for d in self._dests)

    def key_text(self, key: RequestKey) -> str:
        raise NotImplementedError

    def pick(
        self, *, key: RequestKey, now: float, exclude: frozenset[str] = frozenset()
    ) -> Destination | None:
        return rendezvous_pick(self._dests, self._seeds, stable_hash64(self.key_text(key)), exclude)


@register
class HashCallId(_RendezvousScheduler):
    """Kamailio algorithm 0: hash over Call-ID (all requests of a dialog stick)."""

    __slots__ = ()
    name = "hash-callid"

    def key_text(self, key: RequestKey) -> str:
        return key.call_id


@register
class HashFrom(_RendezvousScheduler):
    """Kamailio algorithm 1: hash over the From URI user (a caller sticks)."""

    __slots__ = ()
    name = "hash-from"

    def key_text(self, key: RequestKey) -> str:
        return key.from_user


@register
class HashTo(_RendezvousScheduler):
    """Kamailio algorithm 2: hash over the To URI user (a callee sticks)."""

    __slots__ = ()
    name = "hash-to"

    def key_text(self, key: RequestKey) -> str:
        return key.to_user


@register
class HashRequestUri(_RendezvousScheduler):
    """Kamailio algorithm 3: hash over the whole Request-URI."""

    __slots__ = ()
    name = "hash-ruri"

    def key_text(self, key: RequestKey) -> str:
        return key.ruri


@register
class HashAuthUser(_RendezvousScheduler):
    """Kamailio algorithm 5: hash over the authentication username.

    Without credentials Kamailio falls back to round robin; here the fallback is the
    Call-ID, so retransmissions and the challenged retry of one call stay on one server
    (the retry then carries credentials and may move, as it would in Kamailio).
    """

    __slots__ = ()
    name = "hash-authuser"

    def key_text(self, key: RequestKey) -> str:
        return key.call_id if key.auth_user is None else key.auth_user


@register
class DestinationHash(_RendezvousScheduler):
    """IPVS ``dh``: hash over the destination, here the Request-URI user part."""

    __slots__ = ()
    name = "dh"

    def key_text(self, key: RequestKey) -> str:
        return key.ruri_user


@register
class SourceHash(_RendezvousScheduler):
    """IPVS ``sh``: hash over the source address; option ``port`` (bool, default False)
    includes the source port, like IPVS's ``sh-port`` flag."""

    __slots__ = ("_with_port",)
    name = "sh"
    option_names: ClassVar[frozenset[str]] = frozenset({"port"})

    def _configure(self, options: Mapping[str, object]) -> None:
        self._with_port = option_bool(options, "port", False)

    def key_text(self, key: RequestKey) -> str:
        host, port = key.source
        return f"{host}:{port}" if self._with_port else host
