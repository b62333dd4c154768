"""The table-driven engine shared by the four transaction state machines.

Theory of operation
-------------------
Each machine is a :class:`Machine`: a table ``(state, Input) -> Rule`` per transport kind
(reliable tables are the unreliable ones with a few overrides) and, per state, the timers that
may run in it. A :class:`Rule` names an optional effect (a function returning the actions to
perform, e.g. send the ACK) and the next state; a rule into Terminated also names the
:class:`TerminationReason`.

:meth:`Transaction._step` does the same thing for every machine:

1. classify the event into an :class:`Input` (a response by status class, a request as a
   retransmission, an ACK or something else, a timer by name, a TU response by status class);
2. drop a ``TimerFired`` for a timer that is not armed (it was cancelled, or fired already);
3. look the pair up. **Pairs not in the table** have one documented answer: network and timer
   inputs are ignored (the RFC absorbs stray and retransmitted messages; a machine may never
   fail on what a peer sends), TU inputs raise :class:`TransactionUsageError` (the TU responded
   when it may not, e.g. twice with a final response, or on a client transaction);
4. run the effect, move to the next state, cancel the armed timers the new state does not
   use, and on entering Terminated append ``Terminate(reason)`` as the last action.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any, Final, Generic, TypeVar

from sipha.sip.message import Request
from sipha.sip.transaction.events import (
    Action,
    CancelTimer,
    Event,
    RequestReceived,
    ResponseReceived,
    StartTimer,
    Terminate,
    TerminationReason,
    TimerFired,
    TransactionUsageError,
    TransportFailed,
    TuResponded,
)
from sipha.sip.transaction.key import TransactionKey
from sipha.sip.transaction.timers import DEFAULT_TIMERS, TimerConfig, TimerName

from ..fastenum import IdentityEnum

__all__ = ["TU_INPUTS", "Input", "Machine", "Rule", "Transaction", "classify"]


class Input(IdentityEnum):
    """The alphabet of the machines: what an event means to a transaction."""

    REQUEST = "request"  # same method as the transaction's request: a retransmission
    ACK = "ack"
    OTHER_REQUEST = "other-request"  # any other method (misrouted): always ignored
    RESPONSE_1XX = "1xx"
    RESPONSE_2XX = "2xx"
    RESPONSE_FINAL = "300-699"
    TIMER_A = "timer-A"
    TIMER_B = "timer-B"
    TIMER_D = "timer-D"
    TIMER_E = "timer-E"
    TIMER_F = "timer-F"
    TIMER_G = "timer-G"
    TIMER_H = "timer-H"
    TIMER_I = "timer-I"
    TIMER_J = "timer-J"
    TIMER_K = "timer-K"
    TIMER_L = "timer-L"
    TIMER_M = "timer-M"
    TRANSPORT_FAILED = "transport-failed"
    TU_1XX = "tu-1xx"
    TU_2XX = "tu-2xx"
    TU_FINAL = "tu-300-699"


TU_INPUTS = frozenset({Input.TU_1XX, Input.TU_2XX, Input.TU_FINAL})
_TIMER_INPUTS = {timer: Input[f"TIMER_{timer.value}"] for timer in TimerName}


def _status_class(status: int, provisional: Input, ok: Input, final: Input) -> Input:
    if status < 200:
        return provisional
    return ok if status < 300 else final


def classify(event: Event, method: str) -> Input:
    """The :class:`Input` ``event`` is for a transaction whose request has ``method``.

    Raises :class:`TransactionUsageError` for a TU response with a status outside 100-699.
    """
    match event:
        case ResponseReceived(response=response):
            return _status_class(
                response.status, Input.RESPONSE_1XX, Input.RESPONSE_2XX, Input.RESPONSE_FINAL
            )
        case RequestReceived(request=request):
            if request.method == method:
                return Input.REQUEST
            return Input.ACK if request.method == "ACK" else Input.OTHER_REQUEST
        case TimerFired(timer=timer):
            return _TIMER_INPUTS[timer]
        case TransportFailed():
            return Input.TRANSPORT_FAILED
        case TuResponded(response=response):
            if not 100 <= response.status <= 699:
                raise TransactionUsageError(f"status {response.status} is not 100-699")
            return _status_class(response.status, Input.TU_1XX, Input.TU_2XX, Input.TU_FINAL)
    raise TransactionUsageError(f"not a transaction event: {event!r}")  # pragma: no cover


S = TypeVar("S", bound=enum.Enum)
T = TypeVar("T", bound="Transaction[Any]")


# Plain slotted classes, not dataclasses: mypyc cannot compile a generic dataclass (its
# dataclass support rewrites the class's __dict__, which a generic class's type forbids;
# mypyc/mypyc#827). They are written once, when the tables are built at import.
class Rule(Generic[T, S]):
    """One table cell: run ``effect`` (if any), then go to ``next_state``."""

    __slots__ = ("effect", "next_state", "reason")

    def __init__(
        self,
        effect: Callable[[T, Event, float], list[Action]] | None,
        next_state: S,
        reason: TerminationReason | None = None,  # set exactly when next_state is Terminated
    ) -> None:
        self.effect: Final = effect
        self.next_state: Final = next_state
        self.reason: Final = reason

    def __repr__(self) -> str:
        return f"Rule({self.effect!r}, {self.next_state!r}, {self.reason!r})"


class Machine(Generic[T, S]):
    """A complete machine: both tables, the timers each state may run, the final state."""

    __slots__ = ("reliable", "terminated", "timers", "unreliable")

    def __init__(
        self,
        *,
        unreliable: Mapping[tuple[S, Input], Rule[T, S]],
        reliable: Mapping[tuple[S, Input], Rule[T, S]],
        timers: Mapping[S, frozenset[TimerName]],
        terminated: S,
    ) -> None:
        self.unreliable: Final = unreliable
        self.reliable: Final = reliable
        self.timers: Final = timers
        self.terminated: Final = terminated
        # Check the tables once at import: a rule into Terminated names its reason, no other
        # does, and every state has a timer set.
        for table in (unreliable, reliable):
            for rule in table.values():
                if (rule.next_state is terminated) != (rule.reason is not None):
                    raise AssertionError(f"inconsistent rule {rule!r}")
        if set(timers) != set(type(terminated)):
            raise AssertionError("every state needs a timer set")


class Transaction(Generic[S]):
    """Common state and timer bookkeeping. Subclasses add the machine and ``start``."""

    __slots__ = (
        "_armed",
        "_interval",
        "_request",
        "_started",
        "_state",
        "key",
        "reliable",
        "termination_reason",
        "timers",
    )

    def __init__(
        self,
        request: Request,
        key: TransactionKey,
        initial: S,
        *,
        reliable: bool,
        timers: TimerConfig = DEFAULT_TIMERS,
    ) -> None:
        self._request: Request | None = request
        self.key = key
        self.reliable = reliable
        self.timers = timers
        self.termination_reason: TerminationReason | None = None
        self._state = initial
        self._started = False
        # (timer, absolute deadline) pairs in arming order: a tuple, not a dict, since at most
        # two timers run at once and a dict costs 248 bytes in each of thousands of lingering
        # transactions (a tuple of one pair: 104).
        self._armed: tuple[tuple[TimerName, float], ...] = ()
        # The current interval of the transaction's one retransmit timer (A, E or G: each
        # machine has at most one), a float rather than a dict: thousands of transactions live.
        self._interval = timers.t1

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key.method} {self._state.name} {self.key.branch}>"

    @property
    def request(self) -> Request:
        """The request that created the transaction.

        A server transaction lets it go once its final response is sent: from then on it
        needs only its key and the bytes of that response (see ``server.py``). Raises
        :class:`TransactionUsageError` when read after that.
        """
        request = self._request
        if request is None:
            raise TransactionUsageError(f"{self!r} no longer holds its request")
        return request

    @property
    def state(self) -> S:
        """The current state."""
        return self._state

    @property
    def started(self) -> bool:
        return self._started

    @property
    def terminated(self) -> bool:
        return self.termination_reason is not None

    @property
    def armed_timers(self) -> dict[TimerName, float]:
        """Armed timers and their absolute deadlines (a copy)."""
        return dict(self._armed)

    def deadline_of(self, timer: TimerName) -> float | None:
        """The absolute deadline of ``timer`` if it is armed."""
        for armed, deadline in self._armed:
            if armed is timer:
                return deadline
        return None

    def next_deadline(self) -> float | None:
        """The earliest armed deadline, or None when no timer runs."""
        return min((deadline for _, deadline in self._armed), default=None)

    # -- helpers for the effects ---------------------------------------------------------
    def _mark_started(self) -> None:
        if self._started:
            raise TransactionUsageError(f"{self!r} already started")
        self._started = True

    def _start(self, timer: TimerName, delay: float, now: float) -> StartTimer:
        # Re-arming keeps the timer's place (as a dict's assignment did) with its new deadline.
        armed = self._armed
        deadline = now + delay
        if any(t is timer for t, _ in armed):
            self._armed = tuple((t, deadline if t is timer else d) for t, d in armed)
        else:
            self._armed = (*armed, (timer, deadline))
        return StartTimer(timer, delay)

    def _start_wait(self, timer: TimerName, now: float) -> list[Action]:
        """Arm a one-shot timer; nothing when it lasts 0 s here (the table then goes straight
        to Terminated, see ``timers``)."""
        delay = self.timers.wait(timer, reliable=self.reliable)
        return [self._start(timer, delay, now)] if delay > 0 else []

    def _start_retransmit(self, timer: TimerName, now: float) -> list[Action]:
        """Arm A, E or G at T1, on unreliable transports only (RFC 3261 §17.1.1.2)."""
        if self.reliable:
            return []
        interval = self._interval = self.timers.first_interval(timer)
        return [self._start(timer, interval, now)]

    def _restart_retransmit(self, timer: TimerName, now: float, interval: float) -> StartTimer:
        self._interval = interval
        return self._start(timer, interval, now)

    def _backoff(self, timer: TimerName, now: float) -> StartTimer:
        previous = self._interval
        return self._restart_retransmit(timer, now, self.timers.next_interval(timer, previous))

    # -- the engine ------------------------------------------------------------------------
    def _step(self: T, machine: Machine[T, S], event: Event, now: float) -> list[Action]:
        if not self._started:
            raise TransactionUsageError(f"{self!r} fed before start()")
        kind = classify(event, self.key.method)
        if isinstance(event, TimerFired):
            fired = event.timer
            if not any(t is fired for t, _ in self._armed):
                return []  # cancelled or already fired: a stale timer
            self._armed = tuple(pair for pair in self._armed if pair[0] is not fired)
        table = machine.reliable if self.reliable else machine.unreliable
        rule = table.get((self._state, kind))
        if rule is None:
            if kind in TU_INPUTS:
                raise TransactionUsageError(f"{self!r} cannot take {kind.value} now")
            return []
        actions = rule.effect(self, event, now) if rule.effect is not None else []
        if rule.next_state is not self._state:
            keep = machine.timers[rule.next_state]
            if self._armed:
                for timer, _ in self._armed:
                    if timer not in keep:
                        actions.append(CancelTimer(timer))
                self._armed = tuple(pair for pair in self._armed if pair[0] in keep)
            self._state = rule.next_state
        if rule.reason is not None:
            self.termination_reason = rule.reason
            actions.append(Terminate(rule.reason))
        return actions
