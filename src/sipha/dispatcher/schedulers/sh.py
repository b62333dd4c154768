"""`sh`: IPVS source hashing: requests from one source address reach one server.

Option ``port`` (bool, default False) includes the source port, like IPVS's ``sh-port``
flag (useful when many clients share one NAT address). Weighted rendezvous, not IPVS's
``hash % n``: see `hashing` for why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from .base import RequestKey, option_bool, register
from .hashing import RendezvousScheduler


@register
class SourceHash(RendezvousScheduler):
    """IPVS ``sh``: hash over the source address (and port with ``port = true``)."""

    __slots__ = ("_with_port",)
    name = "sh"
    KEY_FIELDS = frozenset({"source"})
    option_names: ClassVar[frozenset[str]] = frozenset({"port"})

    def _configure(self, options: Mapping[str, object]) -> None:
        self._with_port = option_bool(options, "port", False)

    def key_text(self, key: RequestKey) -> str:
        host, port = key.source
        return f"{host}:{port}" if self._with_port else host
