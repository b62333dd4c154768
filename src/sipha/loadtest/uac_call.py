"""One outgoing call: :mod:`~sipha.loadtest.uac_table`'s rules, performed.

Theory of operation
-------------------
A call classifies what reaches it (a response, its timer, the callee's BYE, the end of the
run) into a :class:`~sipha.loadtest.uac_table.CallInput`, looks up the rule for its state and
performs the rule's actions in order (:mod:`sipha.loadtest.uac_actions`, one function each).

A call touches nothing of its engine but :class:`CallHost`: the :class:`~sipha.loadtest.core.
Host` operations (queue what it sends, arm its one timer, count a retransmission, be
forgotten) plus the call's outcome (answered now, succeeded, failed) and a hold time.  What
every call shares (message builder, timers, credentials) is one frozen :class:`CallSettings`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from sipha.loadtest.core import Host, SipTimers
from sipha.loadtest.digest import authorization_line
from sipha.loadtest.messages import MessageBuilder
from sipha.loadtest.stats import FailureReason
from sipha.loadtest.uac_actions import ROWS
from sipha.loadtest.uac_table import BYE_BY_STATUS as _BYE_BY_STATUS
from sipha.loadtest.uac_table import INVITE_BY_STATUS as _INVITE_BY_STATUS
from sipha.loadtest.uac_table import CallInput, CallState
from sipha.loadtest.wire import Scan

__all__ = ["CallHost", "CallSettings", "CallState", "InviteCall"]


class CallHost(Host, Protocol):
    """The UAC engine as a call sees it: the engine host plus the call's outcome."""

    def hold_time(self) -> float:
        """How long to hold this call once answered."""

    def call_answered(self, now: float) -> None:
        """The call was answered now (marks this second's 10 ms slot)."""

    def call_succeeded(self, setup_200: float, first_18x: float | None) -> None:
        """The call ended successfully; INVITE -> 2xx and INVITE -> first 18x in seconds."""

    def call_failed(self, reason: FailureReason | int) -> None:
        """The call failed (a reason or a status code)."""


@dataclass(frozen=True, slots=True)
class CallSettings:
    """What every call of one engine shares."""

    builder: MessageBuilder
    timers: SipTimers
    tag_prefix: str
    domain: str
    sdp: bytes
    timer_b: float  # Timer B / F (RFC 3261 §17.1.1.2), shortened by a recv_timeout
    ring_timeout: float
    password: str | None
    rng: random.Random


_INVITE = b"INVITE"
_BYE = b"BYE"
_CANCEL = b"CANCEL"
_CANCEL_ANSWERED = CallInput.CANCEL_ANSWERED
_OTHER = CallInput.OTHER_RESPONSE
_COMPLETED = CallState.COMPLETED
_ENDED = CallState.ENDED
_INVITE_CHALLENGE = CallInput.INVITE_CHALLENGE
_INVITE_REJECTED = CallInput.INVITE_REJECTED
_BYE_CHALLENGE = CallInput.BYE_CHALLENGE
_BYE_REJECTED = CallInput.BYE_REJECTED


class InviteCall:
    """One call placed by the UAC engine (see the module docstring)."""

    __slots__ = (
        "ack",
        "auth_line",
        "auth_tried",
        "branch",
        "bye_auth_tried",
        "call_id",
        "cseq",
        "deadline",
        "from_hdr",
        "gen",
        "host",
        "interval",
        "invite_cseq",
        "key",
        "n",
        "pending_line",
        "remote_target",
        "request",
        "route",
        "ruri",
        "s",
        "started",
        "state",
        "t18x",
        "t200",
        "to_hdr",
        "to_tag",
        "user",
    )

    def __init__(
        self, host: CallHost, settings: CallSettings, n: int, user: str, callee: str, now: float
    ) -> None:
        s = settings
        self.host = host
        self.s = s
        self.n = n
        self.gen = 0
        self.user = user
        self.call_id = f"{n}-{s.tag_prefix}@{s.builder.local_host}"
        self.key = self.call_id.encode()
        self.from_hdr = f"<sip:{user}@{s.domain}>;tag={s.tag_prefix}{n}"
        self.to_hdr = f"<sip:{callee}@{s.domain}>"
        self.ruri = f"sip:{callee}@{s.builder.target}"
        self.cseq = 1  # the latest request's CSeq number
        self.invite_cseq = 1  # the latest INVITE's
        self.branch = f"z9hG4bK{s.tag_prefix}{n}i1"
        self.auth_line = ""
        self.pending_line = ""
        self.auth_tried = False
        self.bye_auth_tried = False
        self.started = now
        self.t18x = -1.0
        self.t200 = -1.0
        self.state = CallState.CALLING
        self.to_tag = b""
        self.remote_target = ""
        self.route = ""
        self.ack = b""
        self.request = b""
        self.interval = s.timers.t1
        self.deadline = 0.0

    # -- inputs ---------------------------------------------------------------------------------

    def on_response(self, msg: Scan, data: bytes, now: float) -> None:
        # classify_response, by table: the status's input if the CSeq is the current one of
        # its method (the INVITE's, or the BYE's), a challenge answerable only once.
        method = msg.cseq_method
        if method == _INVITE and msg.cseq_num == self.invite_cseq:
            event = _INVITE_BY_STATUS[msg.status]
            if event is _INVITE_CHALLENGE and self.auth_tried:
                event = _INVITE_REJECTED
        elif method == _BYE and msg.cseq_num == self.cseq:
            event = _BYE_BY_STATUS[msg.status]
            if event is _BYE_CHALLENGE and self.bye_auth_tried:
                event = _BYE_REJECTED
        elif method == _CANCEL and msg.cseq_num == self.invite_cseq and msg.status >= 200:
            event = _CANCEL_ANSWERED
        else:
            event = _OTHER
        self.handle(event, now, msg)

    def on_timer(self, now: float) -> None:
        self.handle(
            CallInput.RETRANSMIT_DUE if now < self.deadline else CallInput.DEADLINE, now, None
        )

    def on_bye(self, now: float) -> None:
        """The callee hung up (a BYE in this dialog; the engine answers it)."""
        self.handle(CallInput.BYE_RECEIVED, now, None)

    def abandon(self, now: float) -> None:
        """The run ends with this call in progress: failed (``drain-timeout``) unless it was
        already counted."""
        self.handle(CallInput.ABANDON, now, None)

    # -- the machine ----------------------------------------------------------------------------

    def handle(self, event: CallInput, now: float, msg: Scan | None) -> None:
        """Perform the table's rule for ``event`` in the current state."""
        rule, steps, otherwise = ROWS[self.state][event]
        if otherwise is not None:
            assert msg is not None  # only challenges have an otherwise
            line = self._credentials(msg)
            if line is None:
                rule, steps, _ = otherwise
            else:
                self.pending_line = line
        for step in steps:
            step(self, rule, msg, now)
        nxt = rule.next_state
        if nxt is not self.state:
            if nxt is _COMPLETED or nxt is _ENDED:
                self._enter(nxt, now)
            else:
                self.state = nxt

    def _enter(self, state: CallState, now: float) -> None:
        # COMPLETED and ENDED; the other states need nothing on entry.
        host = self.host
        if state is CallState.COMPLETED:
            if self.s.timers.reliable:
                state = CallState.ENDED  # Timer D is zero on a reliable transport
            else:
                # Timer D (RFC 3261 §17.1.1.2): ACK retransmitted finals until 32*T1 past the
                # latest time Timer B allows a final response (started + 64*T1).
                t1 = self.s.timers.t1
                self.deadline = self.started + 96 * t1
                host.arm(self, self.deadline)
        self.state = state
        if state is CallState.ENDED:
            host.disarm(self)
            host.forget(self.key, self)

    def _credentials(self, msg: Scan) -> str | None:
        s = self.s
        if s.password is None:
            return None
        invite = msg.cseq_method == _INVITE
        return authorization_line(
            msg,
            method="INVITE" if invite else "BYE",
            uri=self.ruri if invite else self.remote_target,
            username=self.user,
            password=s.password,
            rng=s.rng,
        )

    # -- sending --------------------------------------------------------------------------------

    def send_invite(self, now: float) -> None:
        s = self.s
        b = s.builder
        self.request = b.request(
            "INVITE",
            self.ruri,
            branch=self.branch,
            from_=self.from_hdr,
            to=self.to_hdr,
            call_id=self.call_id,
            cseq=self.cseq,
            extra=f"Contact: {b.contact(self.user)}\r\n{self.auth_line}",
            body=s.sdp,
        )
        self._start_retransmissions(now)

    def _start_retransmissions(self, now: float) -> None:
        # Timer A / E from T1 on UDP, none over TCP; Timer B / F bounds both (§17.1.1.2).
        self.host.out.append(self.request)
        timers = self.s.timers
        self.interval = timers.t1
        self.deadline = now + self.s.timer_b
        self.host.arm(self, self.deadline if timers.reliable else now + timers.t1)

    def retransmit(self, now: float) -> None:
        host = self.host
        host.out.append(self.request)
        host.retransmitted()
        host.arm(self, min(now + self.interval, self.deadline))

    def send_bye(self, now: float) -> None:
        s = self.s
        self.cseq += 1
        self.request = s.builder.request(
            "BYE",
            self.remote_target,
            branch=f"z9hG4bK{s.tag_prefix}{self.n}b{self.cseq}",
            from_=self.from_hdr,
            to=f"{self.to_hdr};tag={self.to_tag.decode('utf-8', 'replace')}",
            call_id=self.call_id,
            cseq=self.cseq,
            extra=self.route + self.auth_line if self.bye_auth_tried else self.route,
        )
        self._start_retransmissions(now)
