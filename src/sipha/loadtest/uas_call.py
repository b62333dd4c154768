"""One incoming call at the UAS, as a table: (state, input) -> actions and the next state.

Theory of operation
-------------------
The engine (:mod:`sipha.loadtest.uas`) answers a new INVITE with 180 and draws its fate from
the answer mix; the call is then RINGING.  Its one timer means, by state: the end of the ring
time (``ANSWER_DUE`` / ``BUSY_DUE``, by the fate) or of the ring timeout (``NO_ANSWER_DUE``);
then, once a final response is sent, its retransmission (``RETRANSMIT_DUE``) until the ACK, up
to 64*T1 (``DEADLINE``).

The final response, 2xx or not, is retransmitted the same way: from T1, doubling up to T2,
over UDP only, until the ACK or 64*T1 (RFC 3261 §13.3.1.4 for a 2xx, which the UAS core
retransmits; §17.2.1 Timers G and H for a non-2xx).  One pair of actions does both
(``START_RETRANSMISSIONS``, ``RETRANSMIT_LAST``), and the ACK stops either.  A 2xx never
ACKed fails the call (``timeout``); a non-2xx was counted failed when it was sent.

Every (state, input) pair has a rule (`UAS_TABLE`, checked at import and walked by
``tests/loadtest/test_call_tables_every_pair.py``); what needs nothing is dropped.  A call
touches nothing of its engine but :class:`UasHost`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sipha.loadtest.core import Host, SipTimers
from sipha.loadtest.messages import MessageBuilder
from sipha.loadtest.stats import FailureReason
from sipha.loadtest.wire import Scan
from sipha.sip.fastenum import IdentityEnum

__all__ = ["UAS_TABLE", "UasAction", "UasCall", "UasHost", "UasInput", "UasRule", "UasSettings",
           "UasState"]


class UasState(IdentityEnum):
    RINGING = "ringing"  # 180 sent
    ANSWERED = "answered"  # 200 sent, retransmitted until the ACK
    REJECTED = "rejected"  # a final >= 300 sent (counted failed), retransmitted until the ACK
    CONFIRMED = "confirmed"  # the 200 was ACKed
    ENDED = "ended"  # counted and forgotten


class UasInput(IdentityEnum):
    ANSWER_DUE = "ring time over, fate: answer"
    BUSY_DUE = "ring time over, fate: busy"
    NO_ANSWER_DUE = "ring timeout, fate: no answer"
    INVITE = "the INVITE retransmitted"
    ACK = "the ACK"
    BYE = "the caller's BYE"
    CANCEL = "the caller's CANCEL"
    RETRANSMIT_DUE = "the final response's retransmission is due"
    DEADLINE = "64*T1 since the final response (Timer H, §13.3.1.4)"


class UasAction(IdentityEnum):
    ANSWER = "send 200 with SDP"
    REJECT = "send the rule's final status (0: the mix's busy code)"
    START_RETRANSMISSIONS = "retransmit the final from T1 (UDP) until 64*T1"
    RETRANSMIT_LAST = "send the final again; the interval doubles up to T2"
    RESEND_LAST = "answer a retransmitted INVITE with the last response"
    STOP_RETRANSMISSIONS = "the ACK came: no more retransmissions"
    REPLY_OK = "200 to this BYE or CANCEL"
    REPLY_481 = "481 to this BYE: no dialog (yet)"
    SUCCEED = "report the call successful"
    FAIL = "report the call failed: the rule's reason, else its status"


@dataclass(frozen=True, slots=True)
class UasRule:
    """Perform ``actions``, go to ``next_state``.  ``status`` is REJECT's (0: busy code) and
    FAIL's when ``reason`` is None."""

    actions: tuple[UasAction, ...]
    next_state: UasState
    status: int = 0
    reason: FailureReason | None = None


def _build() -> dict[tuple[UasState, UasInput], UasRule]:
    S, In, A, R = UasState, UasInput, UasAction, UasRule
    t = {(s, i): R((), s) for s in UasState for i in UasInput}
    reject = (A.REJECT, A.START_RETRANSMISSIONS, A.FAIL)
    t[S.RINGING, In.ANSWER_DUE] = R((A.ANSWER, A.START_RETRANSMISSIONS), S.ANSWERED)
    t[S.RINGING, In.BUSY_DUE] = R(reject, S.REJECTED)
    t[S.RINGING, In.NO_ANSWER_DUE] = R(reject, S.REJECTED, 480)
    # RFC 3261 §9.2: 200 to the CANCEL; the INVITE, still ringing, ends with 487.
    t[S.RINGING, In.CANCEL] = R((A.REPLY_OK, *reject), S.REJECTED, 487)
    t[S.RINGING, In.BYE] = R((A.REPLY_481,), S.RINGING)
    for s in (S.RINGING, S.ANSWERED, S.REJECTED, S.CONFIRMED):
        t[s, In.INVITE] = R((A.RESEND_LAST,), s)
    for s in (S.ANSWERED, S.REJECTED, S.CONFIRMED):
        t[s, In.CANCEL] = R((A.REPLY_OK,), s)  # too late: the final is out
    for s in (S.ANSWERED, S.REJECTED):
        t[s, In.RETRANSMIT_DUE] = R((A.RETRANSMIT_LAST,), s)
    t[S.ANSWERED, In.ACK] = R((A.STOP_RETRANSMISSIONS,), S.CONFIRMED)
    t[S.ANSWERED, In.DEADLINE] = R((A.FAIL,), S.ENDED, reason=FailureReason.TIMEOUT_B)
    t[S.REJECTED, In.ACK] = R((), S.ENDED)
    t[S.REJECTED, In.DEADLINE] = R((), S.ENDED)  # Timer H: counted when rejected
    t[S.REJECTED, In.BYE] = R((A.REPLY_481,), S.REJECTED)
    for s in (S.ANSWERED, S.CONFIRMED):
        t[s, In.BYE] = R((A.REPLY_OK, A.SUCCEED), S.ENDED)
    t[S.ENDED, In.BYE] = R((A.REPLY_OK,), S.ENDED)  # its 200 was lost
    return t


UAS_TABLE: Mapping[tuple[UasState, UasInput], UasRule] = _build()
"""(state, input) -> rule for one incoming call; complete over all pairs."""


def _check(table: Mapping[tuple[UasState, UasInput], UasRule]) -> None:
    if {(s, i) for s in UasState for i in UasInput} - set(table):
        raise AssertionError("UAS call table has a hole")
    counted = {UasState.REJECTED, UasState.ENDED}
    for pair, rule in table.items():
        reports = (UasAction.FAIL in rule.actions) + (UasAction.SUCCEED in rule.actions)
        if reports > 1 or (reports == 1) != (pair[0] not in counted and rule.next_state in counted):
            raise AssertionError(f"UAS rule {pair}: the outcome is reported once, on leaving")


_check(UAS_TABLE)


class UasHost(Host, Protocol):
    """The UAS engine as a call sees it: the engine host plus the call's outcome."""

    def call_succeeded(self, setup_200: float) -> None:
        """The call ended with the caller's BYE; INVITE -> 200 took ``setup_200`` seconds."""

    def call_failed(self, reason: FailureReason | int) -> None:
        """The call failed (a reason or the status sent)."""

    def call_over(self, key: bytes, now: float) -> None:
        """Forget the call; remember its Call-ID a while for a BYE whose 200 was lost."""


@dataclass(frozen=True, slots=True)
class UasSettings:
    """What every incoming call of one engine shares."""

    builder: MessageBuilder
    timers: SipTimers
    contact_line: bytes
    sdp: bytes
    busy_code: int


_NEVER = float("inf")
_REASONS = {486: "Busy Here", 480: "Temporarily Unavailable", 487: "Request Terminated",
            600: "Busy Everywhere", 603: "Decline", 503: "Service Unavailable"}


class UasCall:
    """One incoming call (see the module docstring)."""

    __slots__ = (
        "answered_at",
        "deadline",
        "due",
        "gen",
        "host",
        "interval",
        "invite",
        "key",
        "last",
        "peer",
        "s",
        "started",
        "state",
        "to_tag",
    )

    def __init__(
        self, host: UasHost, settings: UasSettings, invite: Scan, peer: Any, to_tag: bytes,
        now: float,
    ) -> None:
        self.host = host
        self.s = settings
        self.gen = 0
        self.key = invite.call_id
        self.invite = invite
        self.peer = peer
        self.to_tag = to_tag
        self.started = now
        self.answered_at = now
        self.state = UasState.RINGING
        self.last = b""
        self.interval = settings.timers.t1
        self.deadline = 0.0
        self.due = UasInput.ANSWER_DUE  # what the timer means while RINGING (the fate)

    def ring(self, fate: UasInput, until: float, now: float) -> None:
        """Send 180; ``fate`` happens at ``until`` (now, if that has come) unless something
        comes first."""
        self._send(self.s.builder.response(self.invite, 180, "Ringing", to_tag=self.to_tag))
        self.due = fate
        self.deadline = _NEVER
        if until <= now:
            self.handle(fate, now, None, None)
        else:
            self.host.arm(self, until)

    def on_timer(self, now: float) -> None:
        self.handle(self.due if now < self.deadline else UasInput.DEADLINE, now, None, None)

    def handle(self, event: UasInput, now: float, msg: Scan | None, peer: Any) -> None:
        """Perform the table's rule for ``event`` (``msg`` and ``peer``: the request, if
        the input is one)."""
        rule, steps = _ROWS[self.state][event]
        for step in steps:
            step(self, rule, msg, peer, now)
        nxt = rule.next_state
        if nxt is not self.state:
            self.state = nxt
            if nxt is UasState.ENDED:
                self.host.disarm(self)
                self.host.call_over(self.key, now)

    def _send(self, data: bytes) -> None:
        self.last = data
        self.host.replies.append((data, self.peer))


# -- the actions, one function each: (call, rule, request or None, its peer, now) --------------

def _answer(c: UasCall, rule: UasRule, msg: Scan | None, peer: Any, now: float) -> None:
    s = c.s
    c._send(s.builder.response(
        c.invite, 200, "OK", to_tag=c.to_tag, extra=s.contact_line, body=s.sdp
    ))
    c.answered_at = now


def _reject(c: UasCall, rule: UasRule, msg: Scan | None, peer: Any, now: float) -> None:
    status = rule.status or c.s.busy_code
    c._send(c.s.builder.response(
        c.invite, status, _REASONS.get(status, "Rejected"), to_tag=c.to_tag
    ))


def _start_retransmissions(
    c: UasCall, rule: UasRule, msg: Scan | None, peer: Any, now: float
) -> None:
    # RFC 3261 §13.3.1.4 (2xx) and §17.2.1 (Timer G, H): from T1 over UDP, until 64*T1.
    timers = c.s.timers
    c.interval = timers.t1
    c.deadline = now + 64 * timers.t1
    c.due = UasInput.RETRANSMIT_DUE
    c.host.arm(c, c.deadline if timers.reliable else now + timers.t1)


def _retransmit_last(c: UasCall, rule: UasRule, msg: Scan | None, peer: Any, now: float) -> None:
    host = c.host
    host.replies.append((c.last, c.peer))
    host.retransmitted()
    c.interval = min(c.interval * 2, c.s.timers.t2)
    host.arm(c, min(now + c.interval, c.deadline))


def _resend_last(c: UasCall, rule: UasRule, msg: Scan | None, peer: Any, now: float) -> None:
    if c.last:
        c.host.replies.append((c.last, peer))
        c.host.retransmitted()


def _stop_retransmissions(
    c: UasCall, rule: UasRule, msg: Scan | None, peer: Any, now: float
) -> None:
    c.host.disarm(c)


def _reply_ok(c: UasCall, rule: UasRule, msg: Scan | None, peer: Any, now: float) -> None:
    assert msg is not None  # a request input: a BYE carries the tag, a CANCEL gets ours
    tag = c.to_tag if msg.method == b"CANCEL" else b""
    c.host.replies.append((c.s.builder.response(msg, 200, "OK", to_tag=tag), peer))


def _reply_481(c: UasCall, rule: UasRule, msg: Scan | None, peer: Any, now: float) -> None:
    assert msg is not None
    c.host.replies.append(
        (c.s.builder.response(msg, 481, "Call/Transaction Does Not Exist"), peer)
    )


def _succeed(c: UasCall, rule: UasRule, msg: Scan | None, peer: Any, now: float) -> None:
    c.host.call_succeeded(c.answered_at - c.started)


def _fail(c: UasCall, rule: UasRule, msg: Scan | None, peer: Any, now: float) -> None:
    c.host.call_failed(rule.reason or rule.status or c.s.busy_code)


_Step = Callable[[UasCall, UasRule, Scan | None, Any, float], None]
_A = UasAction
_PERFORM: dict[UasAction, _Step] = {
    _A.ANSWER: _answer,
    _A.REJECT: _reject,
    _A.START_RETRANSMISSIONS: _start_retransmissions,
    _A.RETRANSMIT_LAST: _retransmit_last,
    _A.RESEND_LAST: _resend_last,
    _A.STOP_RETRANSMISSIONS: _stop_retransmissions,
    _A.REPLY_OK: _reply_ok,
    _A.REPLY_481: _reply_481,
    _A.SUCCEED: _succeed,
    _A.FAIL: _fail,
}
assert set(_PERFORM) == set(UasAction), "every UAS action has a performer"

# The table with each action resolved to its performer, by state then input (the hot path).
_ROWS: dict[UasState, dict[UasInput, tuple[UasRule, tuple[_Step, ...]]]] = {
    state: {
        event: (rule, tuple(_PERFORM[a] for a in rule.actions))
        for event in UasInput
        for rule in (UAS_TABLE[state, event],)
    }
    for state in UasState
}
