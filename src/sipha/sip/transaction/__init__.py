"""SIP transactions (RFC 3261 §17 with RFC 6026) as sans-IO state machines.

Each transaction takes events (``RequestReceived``, ``ResponseReceived``, ``TimerFired``,
``TransportFailed``, ``TuResponded``) with the current time and returns actions (``Send``,
``StartTimer``, ``CancelTimer``, ``PassUp``, ``Terminate``). :class:`TransactionTable` matches
messages to transactions and keeps one timer heap for the I/O layer to sleep on.
"""

from sipha.sip.transaction.builders import build_ack_for_non2xx, build_cancel
from sipha.sip.transaction.client import (
    ClientInviteState,
    ClientInviteTransaction,
    ClientNonInviteState,
    ClientNonInviteTransaction,
)
from sipha.sip.transaction.events import (
    Action,
    CancelTimer,
    Event,
    PassUp,
    RequestReceived,
    ResponseReceived,
    Send,
    StartTimer,
    Terminate,
    TerminationReason,
    TimerFired,
    TransactionUsageError,
    TransportFailed,
    TuResponded,
)
from sipha.sip.transaction.key import (
    TransactionKey,
    client_key,
    invite_key_for_cancel,
    server_key,
)
from sipha.sip.transaction.server import (
    ServerInviteState,
    ServerInviteTransaction,
    ServerNonInviteState,
    ServerNonInviteTransaction,
)
from sipha.sip.transaction.table import (
    AnyTransaction,
    ClientTransaction,
    ServerTransaction,
    TransactionTable,
)
from sipha.sip.transaction.timers import DEFAULT_TIMERS, TimerConfig, TimerName

__all__ = [
    "DEFAULT_TIMERS",
    "Action",
    "AnyTransaction",
    "CancelTimer",
    "ClientInviteState",
    "ClientInviteTransaction",
    "ClientNonInviteState",
    "ClientNonInviteTransaction",
    "ClientTransaction",
    "Event",
    "PassUp",
    "RequestReceived",
    "ResponseReceived",
    "Send",
    "ServerInviteState",
    "ServerInviteTransaction",
    "ServerNonInviteState",
    "ServerNonInviteTransaction",
    "ServerTransaction",
    "StartTimer",
    "Terminate",
    "TerminationReason",
    "TimerConfig",
    "TimerFired",
    "TimerName",
    "TransactionKey",
    "TransactionTable",
    "TransactionUsageError",
    "TransportFailed",
    "TuResponded",
    "build_ack_for_non2xx",
    "build_cancel",
    "client_key",
    "invite_key_for_cancel",
    "server_key",
]
