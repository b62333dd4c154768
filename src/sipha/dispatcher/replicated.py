"""The typed records a dispatcher's state travels in: the snapshot a standby loads first, and
the deltas streamed after it (`state.DispatcherState` makes and applies them; `sipha.ha`
frames them). Times are relative (``ttl``, ``deadline_in``): monotonic clocks differ between
hosts.
"""

from __future__ import annotations

import msgspec

from .transactions import PendingSnapshot, TransactionRemoved, TransactionSet

__all__ = [
    "SNAPSHOT_VERSION",
    "Delta",
    "DialogRemoved",
    "DialogSet",
    "DialogSnapshot",
    "ServerSnapshot",
    "ServerStateSet",
    "StateSnapshot",
]


class ServerSnapshot(msgspec.Struct, frozen=True):
    uid: int
    id: str
    uri: str
    weight: int
    priority: int
    maxload: int
    probing: bool
    state: str
    pending: int
    dialogs: int


class DialogSnapshot(msgspec.Struct, frozen=True, array_like=True):
    call_id: str
    server_uid: int
    phase: str
    ttl: float


class StateSnapshot(msgspec.Struct, frozen=True):
    version: int
    next_uid: int
    servers: list[ServerSnapshot]
    dialogs: list[DialogSnapshot]
    pending: list[PendingSnapshot]


class DialogSet(msgspec.Struct, frozen=True, tag=True):
    call_id: str
    server_uid: int
    phase: str
    ttl: float


class DialogRemoved(msgspec.Struct, frozen=True, tag=True):
    call_id: str


class ServerStateSet(msgspec.Struct, frozen=True, tag=True):
    server_uid: int
    state: str


Delta = DialogSet | DialogRemoved | ServerStateSet | TransactionSet | TransactionRemoved

SNAPSHOT_VERSION = 2
"""2: transactions carry their phase, each attempt's phase and the current attempt."""
