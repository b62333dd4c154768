"""Client transactions (RFC 3261 §17.1, with RFC 6026 §7.2 and §8.4).

Theory of operation
-------------------
A client transaction sends its request, retransmits it on unreliable transports until a
response shows the server got it, passes responses up to the TU and gives up after 64*T1.

INVITE (§17.1.1, Figure 5, as amended by RFC 6026 Figure 5)::

    Calling --1xx--> Proceeding --1xx--> Proceeding
    Calling/Proceeding --300-699--> Completed   (ACK built here and sent; Timer D)
    Calling/Proceeding --2xx--> Accepted        (2xx and its retransmissions passed up; Timer M)
    Calling --Timer A--> Calling (retransmit, A doubles); Calling --Timer B--> Terminated TIMEOUT
    Completed --300-699--> Completed (ACK resent); Completed --Timer D--> Terminated
    Accepted --Timer M--> Terminated

The ACK for a 2xx is the TU's (it is a request of the dialog, §13.2.2.4); RFC 6026 keeps the
transaction alive in Accepted so that 2xx retransmissions from the UAS, and 2xx responses from
other forks, still reach the TU instead of being treated as stray responses.

non-INVITE (§17.1.2, Figure 6)::

    Trying --1xx--> Proceeding;  Trying/Proceeding --200-699--> Completed (Timer K)
    Trying --Timer E--> Trying (min(2E, T2));  Proceeding --Timer E--> Proceeding (T2)
    Trying/Proceeding --Timer F--> Terminated TIMEOUT;  Completed --Timer K--> Terminated

On reliable transports A and E are never armed and D and K last 0 s, so a final response moves
straight to Terminated. A fatal transport error terminates in every live state. Every other
(state, input) pair is ignored (absorbed responses, stale timers) except TU inputs, which raise
:class:`TransactionUsageError`: a client transaction takes no response from its TU.
"""

from __future__ import annotations

from typing import ClassVar, Final

from sipha.sip.message import Request, Response
from sipha.sip.transaction.builders import build_ack_for_non2xx
from sipha.sip.transaction.events import (
    Action,
    Event,
    PassUp,
    ResponseReceived,
    Send,
    TerminationReason,
    TransactionUsageError,
)
from sipha.sip.transaction.key import client_key
from sipha.sip.transaction.machine import Input, Machine, Rule, Transaction
from sipha.sip.transaction.timers import DEFAULT_TIMERS, TimerConfig, TimerName

from ..fastenum import IdentityEnum

__all__ = [
    "ClientInviteState",
    "ClientInviteTransaction",
    "ClientNonInviteState",
    "ClientNonInviteTransaction",
]

_DONE = TerminationReason.COMPLETED
_TIMEOUT = TerminationReason.TIMEOUT
_TRANSPORT = TerminationReason.TRANSPORT_ERROR


def _response(event: Event) -> Response:
    assert isinstance(event, ResponseReceived)  # the tables route only responses here
    return event.response


# -- INVITE ------------------------------------------------------------------------------------
class ClientInviteState(IdentityEnum):
    CALLING = "calling"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    ACCEPTED = "accepted"  # RFC 6026 §7.2
    TERMINATED = "terminated"


class ClientInviteTransaction(Transaction[ClientInviteState]):
    """An INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §7.2).

    ``request`` must be an INVITE with a top Via branch; the key is :func:`client_key`.
    Construction raises ``SipParseError`` if the request lacks Via or CSeq.
    """

    __slots__ = ("ack",)
    State: ClassVar = ClientInviteState

    def __init__(
        self, request: Request, *, reliable: bool, timers: TimerConfig = DEFAULT_TIMERS
    ) -> None:
        if request.method != "INVITE":
            raise TransactionUsageError(f"{request.method} needs a non-INVITE transaction")
        super().__init__(
            request,
            client_key(request),
            ClientInviteState.CALLING,
            reliable=reliable,
            timers=timers,
        )
        self.ack: Request | None = None  # the ACK for a non-2xx final, once built

    def start(self, now: float) -> list[Action]:
        """Send the INVITE, arm Timer A (unreliable only) and Timer B (§17.1.1.2)."""
        self._mark_started()
        return [
            Send(self.request),
            *self._start_retransmit(TimerName.A, now),
            self._start(TimerName.B, self.timers.timeout, now),
        ]

    def handle(self, event: Event, now: float) -> list[Action]:
        """Feed one event; return the actions to perform, in order."""
        return self._step(_INVITE_MACHINE, event, now)

    # -- effects ---------------------------------------------------------------------------
    def _retransmit(self, event: Event, now: float) -> list[Action]:
        return [Send(self.request), self._backoff(TimerName.A, now)]

    def _pass_up(self, event: Event, now: float) -> list[Action]:
        return [PassUp(_response(event))]

    def _accept(self, event: Event, now: float) -> list[Action]:
        # RFC 6026 §7.2: 2xx goes up, the transaction lingers for Timer M.
        return [PassUp(_response(event)), *self._start_wait(TimerName.M, now)]

    def _complete(self, event: Event, now: float) -> list[Action]:
        # §17.1.1.2: pass the response up, ACK it, wait Timer D for its retransmissions.
        response = _response(event)
        self.ack = build_ack_for_non2xx(self.request, response)
        return [PassUp(response), Send(self.ack), *self._start_wait(TimerName.D, now)]

    def _resend_ack(self, event: Event, now: float) -> list[Action]:
        # §17.1.1.2: a retransmitted final in Completed is re-ACKed, not passed up.
        if self.ack is None:  # pragma: no cover - Completed is entered only through _complete
            self.ack = build_ack_for_non2xx(self.request, _response(event))
        return [Send(self.ack)]


_CI = ClientInviteState
_CIT = ClientInviteTransaction
_INVITE_UNRELIABLE: Final[dict[tuple[ClientInviteState, Input], Rule[_CIT, ClientInviteState]]] = {
    (_CI.CALLING, Input.TIMER_A): Rule(_CIT._retransmit, _CI.CALLING),
    (_CI.CALLING, Input.TIMER_B): Rule(None, _CI.TERMINATED, _TIMEOUT),
    (_CI.CALLING, Input.RESPONSE_1XX): Rule(_CIT._pass_up, _CI.PROCEEDING),
    (_CI.CALLING, Input.RESPONSE_2XX): Rule(_CIT._accept, _CI.ACCEPTED),
    (_CI.CALLING, Input.RESPONSE_FINAL): Rule(_CIT._complete, _CI.COMPLETED),
    (_CI.CALLING, Input.TRANSPORT_FAILED): Rule(None, _CI.TERMINATED, _TRANSPORT),
    (_CI.PROCEEDING, Input.RESPONSE_1XX): Rule(_CIT._pass_up, _CI.PROCEEDING),
    (_CI.PROCEEDING, Input.RESPONSE_2XX): Rule(_CIT._accept, _CI.ACCEPTED),
    (_CI.PROCEEDING, Input.RESPONSE_FINAL): Rule(_CIT._complete, _CI.COMPLETED),
    (_CI.PROCEEDING, Input.TRANSPORT_FAILED): Rule(None, _CI.TERMINATED, _TRANSPORT),
    (_CI.COMPLETED, Input.RESPONSE_FINAL): Rule(_CIT._resend_ack, _CI.COMPLETED),
    (_CI.COMPLETED, Input.TIMER_D): Rule(None, _CI.TERMINATED, _DONE),
    (_CI.COMPLETED, Input.TRANSPORT_FAILED): Rule(None, _CI.TERMINATED, _TRANSPORT),
    (_CI.ACCEPTED, Input.RESPONSE_2XX): Rule(_CIT._pass_up, _CI.ACCEPTED),
    (_CI.ACCEPTED, Input.TIMER_M): Rule(None, _CI.TERMINATED, _DONE),
    (_CI.ACCEPTED, Input.TRANSPORT_FAILED): Rule(None, _CI.TERMINATED, _TRANSPORT),
}
_INVITE_MACHINE: Final = Machine(
    unreliable=_INVITE_UNRELIABLE,
    reliable={
        **_INVITE_UNRELIABLE,
        # Timer D is 0 s on reliable transports: ACK and done.
        (_CI.CALLING, Input.RESPONSE_FINAL): Rule(_CIT._complete, _CI.TERMINATED, _DONE),
        (_CI.PROCEEDING, Input.RESPONSE_FINAL): Rule(_CIT._complete, _CI.TERMINATED, _DONE),
    },
    timers={
        _CI.CALLING: frozenset({TimerName.A, TimerName.B}),
        _CI.PROCEEDING: frozenset(),  # §17.1.1.2: a provisional stops A; B only runs in Calling
        _CI.COMPLETED: frozenset({TimerName.D}),
        _CI.ACCEPTED: frozenset({TimerName.M}),
        _CI.TERMINATED: frozenset(),
    },
    terminated=_CI.TERMINATED,
)


# -- non-INVITE --------------------------------------------------------------------------------
class ClientNonInviteState(IdentityEnum):
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class ClientNonInviteTransaction(Transaction[ClientNonInviteState]):
    """A non-INVITE client transaction (RFC 3261 §17.1.2), e.g. REGISTER, BYE, CANCEL.

    Raises :class:`TransactionUsageError` for INVITE or ACK (ACK has no transaction),
    ``SipParseError`` if the request lacks Via or CSeq.
    """

    __slots__ = ()
    State: ClassVar = ClientNonInviteState

    def __init__(
        self, request: Request, *, reliable: bool, timers: TimerConfig = DEFAULT_TIMERS
    ) -> None:
        if request.method in ("INVITE", "ACK"):
            raise TransactionUsageError(f"{request.method} has no non-INVITE transaction")
        super().__init__(
            request,
            client_key(request),
            ClientNonInviteState.TRYING,
            reliable=reliable,
            timers=timers,
        )

    def start(self, now: float) -> list[Action]:
        """Send the request, arm Timer E (unreliable only) and Timer F (§17.1.2.2)."""
        self._mark_started()
        return [
            Send(self.request),
            *self._start_retransmit(TimerName.E, now),
            self._start(TimerName.F, self.timers.timeout, now),
        ]

    def handle(self, event: Event, now: float) -> list[Action]:
        """Feed one event; return the actions to perform, in order."""
        return self._step(_NON_INVITE_MACHINE, event, now)

    # -- effects ---------------------------------------------------------------------------
    def _retransmit_trying(self, event: Event, now: float) -> list[Action]:
        return [Send(self.request), self._backoff(TimerName.E, now)]

    def _retransmit_proceeding(self, event: Event, now: float) -> list[Action]:
        # §17.1.2.2: in Proceeding, E is reset to T2 each time.
        return [Send(self.request), self._restart_retransmit(TimerName.E, now, self.timers.t2)]

    def _pass_up(self, event: Event, now: float) -> list[Action]:
        return [PassUp(_response(event))]

    def _complete(self, event: Event, now: float) -> list[Action]:
        return [PassUp(_response(event)), *self._start_wait(TimerName.K, now)]


_CN = ClientNonInviteState
_CNT = ClientNonInviteTransaction
def _live_rules(
    state: ClientNonInviteState,
) -> dict[tuple[ClientNonInviteState, Input], Rule[_CNT, ClientNonInviteState]]:
    # Trying and Proceeding answer responses, Timer F and transport errors alike.
    return {
        (state, Input.RESPONSE_1XX): Rule(_CNT._pass_up, _CN.PROCEEDING),
        (state, Input.RESPONSE_2XX): Rule(_CNT._complete, _CN.COMPLETED),
        (state, Input.RESPONSE_FINAL): Rule(_CNT._complete, _CN.COMPLETED),
        (state, Input.TIMER_F): Rule(None, _CN.TERMINATED, _TIMEOUT),
        (state, Input.TRANSPORT_FAILED): Rule(None, _CN.TERMINATED, _TRANSPORT),
    }


_NON_INVITE_UNRELIABLE: Final[
    dict[tuple[ClientNonInviteState, Input], Rule[_CNT, ClientNonInviteState]]
] = {
    **_live_rules(_CN.TRYING),
    **_live_rules(_CN.PROCEEDING),
    (_CN.TRYING, Input.TIMER_E): Rule(_CNT._retransmit_trying, _CN.TRYING),
    (_CN.PROCEEDING, Input.TIMER_E): Rule(_CNT._retransmit_proceeding, _CN.PROCEEDING),
    (_CN.COMPLETED, Input.TIMER_K): Rule(None, _CN.TERMINATED, _DONE),
    (_CN.COMPLETED, Input.TRANSPORT_FAILED): Rule(None, _CN.TERMINATED, _TRANSPORT),
}
_NON_INVITE_MACHINE: Final = Machine(
    unreliable=_NON_INVITE_UNRELIABLE,
    reliable={
        **_NON_INVITE_UNRELIABLE,
        # Timer K is 0 s on reliable transports.
        **{
            (live, kind): Rule(_CNT._complete, _CN.TERMINATED, _DONE)
            for live in (_CN.TRYING, _CN.PROCEEDING)
            for kind in (Input.RESPONSE_2XX, Input.RESPONSE_FINAL)
        },
    },
    timers={
        _CN.TRYING: frozenset({TimerName.E, TimerName.F}),
        _CN.PROCEEDING: frozenset({TimerName.E, TimerName.F}),
        _CN.COMPLETED: frozenset({TimerName.K}),
        _CN.TERMINATED: frozenset(),
    },
    terminated=_CN.TERMINATED,
)
