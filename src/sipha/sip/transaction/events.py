"""Inputs and outputs of the transaction state machines (RFC 3261 §17).

Events are what happened (past tense): a message arrived, a timer fired, the transport failed,
the transaction user (TU) responded. Actions are what the caller must do (imperative): send a
message, start or cancel a timer, pass a message up to the TU, forget the transaction.

All are frozen slotted dataclasses. The messages they carry are mutable objects; the machines
never edit a message they receive or have been given, and callers should not edit one they got
back in a ``Send`` either (it may be retransmitted later).
"""

from __future__ import annotations

from dataclasses import dataclass

from sipha.sip.message import Request, Response
from sipha.sip.transaction.timers import TimerName

from ..fastenum import IdentityEnum

__all__ = [
    "Action",
    "CancelTimer",
    "Event",
    "PassUp",
    "RequestReceived",
    "ResponseReceived",
    "Send",
    "StartTimer",
    "Terminate",
    "TerminationReason",
    "TimerFired",
    "TransactionUsageError",
    "TransportFailed",
    "TuResponded",
]


class TransactionUsageError(Exception):
    """The transaction user broke the contract: responded after a final response, responded on
    a client transaction, started a transaction twice, or fed it before starting it.

    Network input never raises this: stray and retransmitted messages are absorbed.
    """


class TerminationReason(IdentityEnum):
    """Why a transaction reached Terminated."""

    COMPLETED = "completed"  # normal end: Timer D/I/J/K/L/M, or at once on reliable transports
    TIMEOUT = "timeout"  # Timer B/F (client: the TU synthesizes 408) or H (no ACK came)
    TRANSPORT_ERROR = "transport-error"  # RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.4


# -- events (inputs) -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A request matching the transaction arrived (a retransmission, or an ACK)."""

    request: Request


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response matching the (client) transaction arrived."""

    response: Response


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer armed by ``StartTimer`` expired."""

    timer: TimerName


@dataclass(frozen=True, slots=True)
class TransportFailed:
    """The transport reported a fatal error sending for this transaction (RFC 3261 §18.4)."""


@dataclass(frozen=True, slots=True)
class TuResponded:
    """The transaction user handed a response to a server transaction to send."""

    response: Response


Event = RequestReceived | ResponseReceived | TimerFired | TransportFailed | TuResponded


# -- actions (outputs) -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Send:
    """Hand this message to the transport (to the transaction's peer)."""

    message: Request | Response


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Arm (or re-arm) ``timer`` to fire ``delay`` seconds from the ``now`` of this call."""

    timer: TimerName
    delay: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Disarm ``timer``; a later ``TimerFired`` for it would be ignored anyway."""

    timer: TimerName


@dataclass(frozen=True, slots=True)
class PassUp:
    """Deliver this message to the transaction user."""

    message: Request | Response


@dataclass(frozen=True, slots=True)
class Terminate:
    """The transaction is over; the caller drops it. Always the last action of its batch."""

    reason: TerminationReason


Action = Send | StartTimer | CancelTimer | PassUp | Terminate
