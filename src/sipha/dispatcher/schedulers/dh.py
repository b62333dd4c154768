"""`dh`: IPVS destination hashing, the destination here being the Request-URI user part
(the number dialled), so calls to one number reach one server.

Weighted rendezvous, not IPVS's ``hash % n``: see `hashing` for why.
"""

from __future__ import annotations

from .base import RequestKey, register
from .hashing import RendezvousScheduler


@register
class DestinationHash(RendezvousScheduler):
    """IPVS ``dh``: hash over the Request-URI user part."""

    __slots__ = ()
    name = "dh"
    KEY_FIELDS = frozenset({"ruri_user"})

    def key_text(self, key: RequestKey) -> str:
        return key.ruri_user
