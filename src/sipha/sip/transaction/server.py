"""Server transactions (RFC 3261 §17.2, with RFC 6026 §7.1 and §8).

Theory of operation
-------------------
A server transaction absorbs retransmitted requests (answering each with the last response it
sent), sends what its TU responds, and on unreliable transports retransmits INVITE finals until
the ACK arrives.

INVITE (§17.2.1, Figure 7, as amended by RFC 6026 Figure 7)::

    Proceeding --TU 1xx--> Proceeding (sent, remembered; a retransmitted INVITE resends it)
    Proceeding --TU 2xx--> Accepted   (sent; Timer L; further TU 2xx sent, INVITEs absorbed,
                                       ACKs passed up to the TU)
    Proceeding --TU 300-699--> Completed (sent; Timer G retransmits it, Timer H waits for ACK)
    Completed --INVITE / Timer G--> Completed (final resent; G = min(2G, T2))
    Completed --ACK--> Confirmed (Timer I absorbs ACK retransmissions)
    Completed --Timer H--> Terminated TIMEOUT;  Confirmed --Timer I--> Terminated
    Accepted --Timer L--> Terminated

``start()`` sends "100 Trying" when ``auto_trying`` is set (§17.2.1: the transaction MUST
send it unless the TU answers within 200 ms; a TU that always answers at once turns it off).

non-INVITE (§17.2.2, Figure 8)::

    Trying --TU 1xx--> Proceeding;  Trying/Proceeding --TU 200-699--> Completed (Timer J)
    Proceeding/Completed --request--> same state (last response resent); Trying absorbs it
    Completed --Timer J--> Terminated

On reliable transports G is never armed and I and J last 0 s, so the ACK (INVITE) or the final
response (non-INVITE) ends the transaction at once; H and L still run. A fatal transport error
terminates in every live state (§17.2.4). Every other (state, input) pair is ignored for network
and timer inputs; a TU response not in the table (after a final, or a non-2xx after a 2xx) raises
:class:`TransactionUsageError`.
"""

from __future__ import annotations

import enum
from typing import ClassVar, Final, TypeVar

from sipha.sip.message import Request, Response, build_response
from sipha.sip.transaction.events import (
    Action,
    Event,
    PassUp,
    RequestReceived,
    Send,
    TerminationReason,
    TransactionUsageError,
    TuResponded,
)
from sipha.sip.transaction.key import server_key
from sipha.sip.transaction.machine import Input, Machine, Rule, Transaction
from sipha.sip.transaction.timers import DEFAULT_TIMERS, TimerConfig, TimerName

from ..fastenum import IdentityEnum

__all__ = [
    "ServerInviteState",
    "ServerInviteTransaction",
    "ServerNonInviteState",
    "ServerNonInviteTransaction",
]

_DONE = TerminationReason.COMPLETED
_TIMEOUT = TerminationReason.TIMEOUT
_TRANSPORT = TerminationReason.TRANSPORT_ERROR


def _tu_response(event: Event) -> Response:
    assert isinstance(event, TuResponded)  # the tables route only TU responses here
    return event.response


S = TypeVar("S", bound=enum.Enum)


class _ServerTransaction(Transaction[S]):
    """What both server machines share: the last response sent, resent on retransmissions."""

    # The last response sent: the Response while the transaction is live, only its bytes
    # once it lingers after a final (see _send_and_linger), one slot for both.
    __slots__ = ("_last",)

    def __init__(
        self, request: Request, initial: S, *, reliable: bool, timers: TimerConfig
    ) -> None:
        if request.method == "ACK":
            raise TransactionUsageError("ACK creates no server transaction (§17.2.3)")
        super().__init__(request, server_key(request), initial, reliable=reliable, timers=timers)
        self._last: Response | bytes | None = None

    @property
    def last_response(self) -> Response | None:
        """The last response sent (after a final: a message of the same bytes, rebuilt)."""
        last = self._last
        return _wire_only(last) if isinstance(last, bytes) else last

    def _resend_last(self, event: Event, now: float) -> list[Action]:
        last = self.last_response
        return [] if last is None else [Send(last)]

    def _send(self, event: Event, now: float) -> list[Action]:
        response = self._last = _tu_response(event)
        return [Send(response)]

    def _send_and_linger(self, event: Event, now: float) -> list[Action]:
        """Send a final response and keep only what absorbing retransmissions needs.

        From here to Terminated the transaction only resends its final response (§17.2.1,
        §17.2.2) and matches by its key: the request, the response object and its parsed
        headers go, the bytes stay. Thousands of transactions linger for 64*T1 at a few hundred
        calls/s, so this is most of a server's memory.
        """
        response = _tu_response(event)
        self._last = bytes(response)
        self._request = None
        return [Send(response)]


def _wire_only(raw: bytes) -> Response:
    # A response that serializes to exactly ``raw`` (sipha's own bytes: "SIP/2.0 NNN reason"),
    # built only for a retransmission, which is rare.
    start = raw[: raw.index(b"\r\n")].decode("utf-8")
    _, status, reason = start.split(" ", 2)
    lean = Response(int(status), reason, [], [], b"")
    lean._raw = raw
    return lean


# -- INVITE ------------------------------------------------------------------------------------
class ServerInviteState(IdentityEnum):
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"  # RFC 6026 §7.1
    TERMINATED = "terminated"


class ServerInviteTransaction(_ServerTransaction[ServerInviteState]):
    """An INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §7.1).

    Created for an INVITE that matched no transaction; the caller hands that INVITE to the TU.
    Construction raises ``SipParseError`` if the INVITE lacks Via or CSeq.
    """

    __slots__ = ("auto_trying",)
    State: ClassVar = ServerInviteState

    def __init__(
        self,
        request: Request,
        *,
        reliable: bool,
        timers: TimerConfig = DEFAULT_TIMERS,
        auto_trying: bool = True,
    ) -> None:
        if request.method != "INVITE":
            raise TransactionUsageError(f"{request.method} needs a non-INVITE transaction")
        super().__init__(request, ServerInviteState.PROCEEDING, reliable=reliable, timers=timers)
        self.auto_trying = auto_trying

    def start(self, now: float) -> list[Action]:
        """Send "100 Trying" if ``auto_trying`` (§17.2.1, §8.2.6.1), else nothing."""
        self._mark_started()
        if not self.auto_trying:
            return []
        timestamp = self.request.get("timestamp")
        headers = [] if timestamp is None else [("Timestamp", timestamp)]
        trying = self._last = build_response(self.request, 100, headers=headers)
        return [Send(trying)]

    def handle(self, event: Event, now: float) -> list[Action]:
        """Feed one event; return the actions to perform, in order.

        Raises :class:`TransactionUsageError` for a TU response the state does not allow.
        """
        return self._step(_INVITE_MACHINE, event, now)

    # -- effects ---------------------------------------------------------------------------
    def _send_2xx(self, event: Event, now: float) -> list[Action]:
        # RFC 6026 §7.1: the 2xx is sent once here; its retransmissions are the TU's job.
        return [*self._send_and_linger(event, now), *self._start_wait(TimerName.L, now)]

    def _send_final(self, event: Event, now: float) -> list[Action]:
        return [
            *self._send_and_linger(event, now),
            *self._start_retransmit(TimerName.G, now),
            *self._start_wait(TimerName.H, now),
        ]

    def _retransmit_final(self, event: Event, now: float) -> list[Action]:
        return [*self._resend_last(event, now), self._backoff(TimerName.G, now)]

    def _confirm(self, event: Event, now: float) -> list[Action]:
        return self._start_wait(TimerName.I, now)

    def _pass_up_ack(self, event: Event, now: float) -> list[Action]:
        # RFC 6026 §7.1: an ACK matching an Accepted transaction goes to the TU, not absorbed.
        assert isinstance(event, RequestReceived)
        return [PassUp(event.request)]


_SI = ServerInviteState
_SIT = ServerInviteTransaction
_INVITE_UNRELIABLE: Final[dict[tuple[ServerInviteState, Input], Rule[_SIT, ServerInviteState]]] = {
    (_SI.PROCEEDING, Input.REQUEST): Rule(_SIT._resend_last, _SI.PROCEEDING),
    (_SI.PROCEEDING, Input.TU_1XX): Rule(_SIT._send, _SI.PROCEEDING),
    (_SI.PROCEEDING, Input.TU_2XX): Rule(_SIT._send_2xx, _SI.ACCEPTED),
    (_SI.PROCEEDING, Input.TU_FINAL): Rule(_SIT._send_final, _SI.COMPLETED),
    (_SI.PROCEEDING, Input.TRANSPORT_FAILED): Rule(None, _SI.TERMINATED, _TRANSPORT),
    (_SI.COMPLETED, Input.REQUEST): Rule(_SIT._resend_last, _SI.COMPLETED),
    (_SI.COMPLETED, Input.TIMER_G): Rule(_SIT._retransmit_final, _SI.COMPLETED),
    (_SI.COMPLETED, Input.ACK): Rule(_SIT._confirm, _SI.CONFIRMED),
    (_SI.COMPLETED, Input.TIMER_H): Rule(None, _SI.TERMINATED, _TIMEOUT),
    (_SI.COMPLETED, Input.TRANSPORT_FAILED): Rule(None, _SI.TERMINATED, _TRANSPORT),
    (_SI.CONFIRMED, Input.TIMER_I): Rule(None, _SI.TERMINATED, _DONE),
    (_SI.ACCEPTED, Input.TU_2XX): Rule(_SIT._send_and_linger, _SI.ACCEPTED),
    (_SI.ACCEPTED, Input.ACK): Rule(_SIT._pass_up_ack, _SI.ACCEPTED),
    (_SI.ACCEPTED, Input.TIMER_L): Rule(None, _SI.TERMINATED, _DONE),
    (_SI.ACCEPTED, Input.TRANSPORT_FAILED): Rule(None, _SI.TERMINATED, _TRANSPORT),
}
_INVITE_MACHINE: Final = Machine(
    unreliable=_INVITE_UNRELIABLE,
    reliable={
        **_INVITE_UNRELIABLE,
        # Timer I is 0 s on reliable transports: the ACK ends the transaction.
        (_SI.COMPLETED, Input.ACK): Rule(_SIT._confirm, _SI.TERMINATED, _DONE),
    },
    timers={
        _SI.PROCEEDING: frozenset(),
        _SI.COMPLETED: frozenset({TimerName.G, TimerName.H}),
        _SI.CONFIRMED: frozenset({TimerName.I}),  # §17.2.1: entering Confirmed stops G and H
        _SI.ACCEPTED: frozenset({TimerName.L}),
        _SI.TERMINATED: frozenset(),
    },
    terminated=_SI.TERMINATED,
)


# -- non-INVITE --------------------------------------------------------------------------------
class ServerNonInviteState(IdentityEnum):
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class ServerNonInviteTransaction(_ServerTransaction[ServerNonInviteState]):
    """A non-INVITE server transaction (RFC 3261 §17.2.2), CANCEL included.

    Created for a request that matched no transaction; the caller hands it to the TU.
    Construction raises ``SipParseError`` if the request lacks Via or CSeq.
    """

    __slots__ = ()
    State: ClassVar = ServerNonInviteState

    def __init__(
        self, request: Request, *, reliable: bool, timers: TimerConfig = DEFAULT_TIMERS
    ) -> None:
        if request.method == "INVITE":
            raise TransactionUsageError("INVITE needs an INVITE transaction")
        super().__init__(request, ServerNonInviteState.TRYING, reliable=reliable, timers=timers)

    def start(self, now: float) -> list[Action]:
        """Nothing to send: the TU answers (§17.2.2)."""
        self._mark_started()
        return []

    def handle(self, event: Event, now: float) -> list[Action]:
        """Feed one event; return the actions to perform, in order.

        Raises :class:`TransactionUsageError` for a TU response after the final one.
        """
        return self._step(_NON_INVITE_MACHINE, event, now)

    def _send_final(self, event: Event, now: float) -> list[Action]:
        return [*self._send_and_linger(event, now), *self._start_wait(TimerName.J, now)]


_SN = ServerNonInviteState
_SNT = ServerNonInviteTransaction
_NonInviteTable = dict[tuple[ServerNonInviteState, Input], Rule[_SNT, ServerNonInviteState]]


def _answering_rules(
    state: ServerNonInviteState, final_to: ServerNonInviteState
) -> _NonInviteTable:
    # Trying and Proceeding take TU responses alike; ``final_to`` is Completed, or Terminated
    # on reliable transports where Timer J lasts 0 s.
    reason = _DONE if final_to is _SN.TERMINATED else None
    return {
        (state, Input.TU_1XX): Rule(_SNT._send, _SN.PROCEEDING),
        (state, Input.TU_2XX): Rule(_SNT._send_final, final_to, reason),
        (state, Input.TU_FINAL): Rule(_SNT._send_final, final_to, reason),
        (state, Input.TRANSPORT_FAILED): Rule(None, _SN.TERMINATED, _TRANSPORT),
    }


_NON_INVITE_COMMON: Final[_NonInviteTable] = {
    # §17.2.2: Trying discards retransmissions (Input.REQUEST absent), later states resend.
    (_SN.PROCEEDING, Input.REQUEST): Rule(_SNT._resend_last, _SN.PROCEEDING),
    (_SN.COMPLETED, Input.REQUEST): Rule(_SNT._resend_last, _SN.COMPLETED),
    (_SN.COMPLETED, Input.TIMER_J): Rule(None, _SN.TERMINATED, _DONE),
    (_SN.COMPLETED, Input.TRANSPORT_FAILED): Rule(None, _SN.TERMINATED, _TRANSPORT),
}
_NON_INVITE_MACHINE: Final = Machine(
    unreliable={
        **_NON_INVITE_COMMON,
        **_answering_rules(_SN.TRYING, _SN.COMPLETED),
        **_answering_rules(_SN.PROCEEDING, _SN.COMPLETED),
    },
    reliable={
        **_NON_INVITE_COMMON,
        **_answering_rules(_SN.TRYING, _SN.TERMINATED),
        **_answering_rules(_SN.PROCEEDING, _SN.TERMINATED),
    },
    timers={
        _SN.TRYING: frozenset(),
        _SN.PROCEEDING: frozenset(),
        _SN.COMPLETED: frozenset({TimerName.J}),
        _SN.TERMINATED: frozenset(),
    },
    terminated=_SN.TERMINATED,
)
