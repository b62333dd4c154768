"""Kamailio's hash family, and the rendezvous base that every hashing scheduler shares.

Kamailio's algorithms 0, 1, 2, 3 and 5 differ only in the request field they hash, so they
live here as one family with a per-key table (`KAMAILIO_KEYS`) rather than five modules
that would repeat the same twenty lines:

* ``hash-callid`` - algorithm 0: the Call-ID (all requests of a dialog stick);
* ``hash-from`` - algorithm 1: the From URI user (a caller sticks);
* ``hash-to`` - algorithm 2: the To URI user (a callee sticks);
* ``hash-ruri`` - algorithm 3: the whole Request-URI;
* ``hash-authuser`` - algorithm 5: the authentication username.

Without credentials Kamailio's algorithm 5 falls back to round robin; here the fallback is
the Call-ID, so retransmissions and the challenged retry of one call stay on one server
(the retry then carries credentials and may move, as it would in Kamailio).

IPVS's ``dh`` and ``sh`` use the same `RendezvousScheduler` base from their own modules.

Kamailio and IPVS take ``hash % n``, which on a membership change re-homes almost every key
and dumps a failed server's share on one neighbour. All of these use weighted rendezvous
hashing instead (see `stablehash`): a departing server's keys spread over all remaining
servers in proportion to weight, and no other key moves. Exclusion for failover yields the
key's runner-up, so retries are as sticky as first attempts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .base import Destination, RequestKey, SchedulerBase, register
from .stablehash import rendezvous_pick, seed_of, stable_hash64

__all__ = ["KAMAILIO_KEYS", "KamailioHash", "RendezvousScheduler"]


class RendezvousScheduler(SchedulerBase):
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


KAMAILIO_KEYS: Mapping[str, Callable[[RequestKey], str]] = {
    "hash-callid": lambda k: k.call_id,
    "hash-from": lambda k: k.from_user,
    "hash-to": lambda k: k.to_user,
    "hash-ruri": lambda k: k.ruri,
    "hash-authuser": lambda k: k.call_id if k.auth_user is None else k.auth_user,
}
"""Scheduler name -> the request field it hashes (see the table above)."""


class KamailioHash(RendezvousScheduler):
    """One of Kamailio's hash algorithms; the subclass's `name` picks its key."""

    __slots__ = ("_key_of",)

    def _configure(self, options: Mapping[str, object]) -> None:
        self._key_of = KAMAILIO_KEYS[self.name]

    def key_text(self, key: RequestKey) -> str:
        return self._key_of(key)


# The registered names, one class each so that `create()` and `type(s).name` work as for
# every other scheduler; all behaviour is in `KamailioHash` and `KAMAILIO_KEYS`.
@register
class HashCallId(KamailioHash):
    __slots__ = ()
    name = "hash-callid"
    KEY_FIELDS = frozenset({"call_id"})


@register
class HashFrom(KamailioHash):
    __slots__ = ()
    name = "hash-from"
    KEY_FIELDS = frozenset({"from_user"})


@register
class HashTo(KamailioHash):
    __slots__ = ()
    name = "hash-to"
    KEY_FIELDS = frozenset({"to_user"})


@register
class HashRequestUri(KamailioHash):
    __slots__ = ()
    name = "hash-ruri"
    KEY_FIELDS = frozenset({"ruri"})


@register
class HashAuthUser(KamailioHash):
    __slots__ = ()
    name = "hash-authuser"
    KEY_FIELDS = frozenset({"auth_user", "call_id"})
