"""One outgoing call: INVITE (with SDP), provisional and final responses, ACK, hold, BYE.

Theory of operation
-------------------
A call is a small state machine with one timer (see :mod:`sipha.loadtest.core`)::

    state       input                       action                              next
    ---------   -------------------------   ---------------------------------   ----------
    CALLING     1xx                         note first 18x; arm ring timeout    PROCEEDING
    CALLING     timer, before Timer B       retransmit INVITE (UDP), A *= 2     CALLING
    CALLING     timer, Timer B reached      failed(timeout)                     (gone)
    CALLING/    2xx                         ACK (new branch), arm hold timer    CONFIRMED
     PROCEEDING 401/407, not yet answered   ACK, re-INVITE with credentials     CALLING
                other >= 300                ACK (INVITE's branch), failed(code) COMPLETED
    PROCEEDING  timer (ring timeout)        CANCEL                              CANCELLING
    CANCELLING  487 / other >= 300          ACK, failed(timeout)                COMPLETED
    CANCELLING  timer (64*T1)               failed(timeout)                     (gone)
    CONFIRMED   2xx (retransmission)        ACK again                           CONFIRMED
    CONFIRMED   timer (hold time over)      BYE                                 BYE_SENT
    BYE_SENT    2xx to BYE                  success (setup latencies recorded)  (gone)
    BYE_SENT    401/407 to BYE, first       BYE with credentials                BYE_SENT
    BYE_SENT    other >= 300 to BYE         failed(bye-failed)                  (gone)
    BYE_SENT    timer, before Timer F       retransmit BYE (UDP), E = min(2E, T2)
    BYE_SENT    timer, Timer F reached      failed(bye-failed)                  (gone)
    COMPLETED   >= 300 (retransmission)     ACK again                           COMPLETED
    COMPLETED   timer (Timer D)             -                                   (gone)
    any         BYE from the callee         200 OK; success if it was CONFIRMED (gone)

Every (state, input) pair not listed is ignored: late provisionals, a 2xx to a call already
cancelled or failed (RFC 3261 §13.2.2.4 would ACK and BYE it; a load generator just lets the
callee's Timer H end it), responses to CANCEL.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from sipha.loadtest.digest import authorization_line
from sipha.loadtest.stats import FailureReason
from sipha.loadtest.wire import Scan

if TYPE_CHECKING:
    from sipha.loadtest.uac import UacEngine

__all__ = ["CallState", "InviteCall"]


class CallState(enum.Enum):
    CALLING = "calling"
    PROCEEDING = "proceeding"
    CANCELLING = "cancelling"
    CONFIRMED = "confirmed"
    BYE_SENT = "bye-sent"
    COMPLETED = "completed"
    ENDED = "ended"


CALLING = CallState.CALLING
PROCEEDING = CallState.PROCEEDING
CANCELLING = CallState.CANCELLING
CONFIRMED = CallState.CONFIRMED
BYE_SENT = CallState.BYE_SENT
COMPLETED = CallState.COMPLETED
ENDED = CallState.ENDED

_TIMEOUT = FailureReason.TIMEOUT_B
_BYE_FAILED = FailureReason.BYE_FAILED


def _route_set(record_routes: list[bytes]) -> str:
    # RFC 3261 §12.1.2: the UAC's route set is the Record-Route entries in reverse order.
    # Entries are split on commas, which do not occur inside the URIs a proxy records.
    if not record_routes:
        return ""
    entries = [e.strip() for v in record_routes for e in v.split(b",") if e.strip()]
    entries.reverse()
    return "".join(f"Route: {e.decode('utf-8', 'replace')}\r\n" for e in entries)


class InviteCall:
    """One call placed by a :class:`~sipha.loadtest.uac.UacEngine`."""

    __slots__ = (
        "ack",
        "auth_line",
        "auth_tried",
        "branch",
        "bye_auth_tried",
        "call_id",
        "cseq",
        "deadline",
        "e",
        "from_hdr",
        "gen",
        "interval",
        "key",
        "n",
        "remote_target",
        "request",
        "route",
        "ruri",
        "started",
        "state",
        "t18x",
        "t200",
        "to_hdr",
        "to_tag",
        "user",
    )

    def __init__(self, engine: UacEngine, n: int, user: str, callee: str, now: float) -> None:
        e = engine
        self.e = e
        self.n = n
        self.gen = 0
        self.user = user
        self.call_id = f"{n}-{e.tag_prefix}@{e.builder.local_host}"
        self.key = self.call_id.encode()
        self.from_hdr = f"<sip:{user}@{e.domain}>;tag={e.tag_prefix}{n}"
        self.to_hdr = f"<sip:{callee}@{e.domain}>"
        self.ruri = f"sip:{callee}@{e.builder.target}"
        self.cseq = 1
        self.branch = f"z9hG4bK{e.tag_prefix}{n}i1"
        self.auth_line = ""
        self.auth_tried = False
        self.bye_auth_tried = False
        self.started = now
        self.t18x = -1.0
        self.t200 = -1.0
        self.state = CALLING
        self.to_tag = b""
        self.remote_target = ""
        self.route = ""
        self.ack = b""
        self.request = b""
        self.interval = e.t1
        self.deadline = 0.0

    # -- sending --------------------------------------------------------------------------------

    def send_invite(self, now: float) -> None:
        e = self.e
        b = e.builder
        self.request = b.request(
            "INVITE",
            self.ruri,
            branch=self.branch,
            from_=self.from_hdr,
            to=self.to_hdr,
            call_id=self.call_id,
            cseq=self.cseq,
            extra=f"Contact: {b.contact(self.user)}\r\n{self.auth_line}",
            body=e.sdp,
        )
        e.out.append(self.request)
        self.state = CALLING
        self.interval = e.t1
        self.deadline = now + e.timer_b  # RFC 3261 §17.1.1.2 Timer B
        e.schedule(self, self.deadline if e.reliable else now + e.t1)

    def _ack_non2xx(self, msg: Scan) -> None:
        # RFC 3261 §17.1.1.3: same branch and Request-URI as the INVITE, To from the response.
        to = msg.to.decode("utf-8", "replace")
        self.ack = self.e.builder.request(
            "ACK",
            self.ruri,
            branch=self.branch,
            from_=self.from_hdr,
            to=to,
            call_id=self.call_id,
            cseq=self.cseq,
        )
        self.e.out.append(self.ack)

    def _send_bye(self, now: float) -> None:
        e = self.e
        self.cseq += 1
        self.request = e.builder.request(
            "BYE",
            self.remote_target,
            branch=f"z9hG4bK{e.tag_prefix}{self.n}b{self.cseq}",
            from_=self.from_hdr,
            to=f"{self.to_hdr};tag={self.to_tag.decode('utf-8', 'replace')}",
            call_id=self.call_id,
            cseq=self.cseq,
            extra=self.route + self.auth_line if self.bye_auth_tried else self.route,
        )
        e.out.append(self.request)
        self.state = BYE_SENT
        self.interval = e.t1
        self.deadline = now + e.timer_b  # RFC 3261 §17.1.2.2 Timer F
        e.schedule(self, self.deadline if e.reliable else now + e.t1)

    # -- receiving ------------------------------------------------------------------------------

    def on_response(self, msg: Scan, data: bytes, now: float) -> None:
        method = msg.cseq_method
        if method == b"INVITE":
            self._invite_response(msg, now)
        elif method == b"BYE" and self.state is BYE_SENT and msg.cseq_num == self.cseq:
            self._bye_response(msg, now)

    def _invite_response(self, msg: Scan, now: float) -> None:
        status = msg.status
        state = self.state
        e = self.e
        if state is CALLING or state is PROCEEDING or state is CANCELLING:
            if msg.cseq_num != self.cseq:
                return  # a response to the INVITE before the authenticated one
            if status < 200:
                if status > 100 and self.t18x < 0:
                    self.t18x = now
                if state is CALLING:
                    # RFC 3261 §17.1.1.2: a provisional stops Timer A; the TU's ring timeout
                    # replaces Timer B from here on.
                    self.state = PROCEEDING
                    e.schedule(self, self.started + e.ring_timeout)
            elif status < 300:
                self._answered(msg, now)
            else:
                self._ack_non2xx(msg)
                if (
                    status in (401, 407)
                    and not self.auth_tried
                    and state is not CANCELLING
                    and e.password is not None
                ):
                    self._reinvite_with_credentials(msg, now)
                elif state is CANCELLING:
                    self._fail(_TIMEOUT, linger=True)
                else:
                    self._fail(status, linger=True)
        elif state is CONFIRMED or state is BYE_SENT:
            if 200 <= status < 300 and self.ack:
                e.out.append(self.ack)  # our ACK was lost: the 2xx is retransmitted
                e.stats.retransmissions += 1
        elif state is COMPLETED and status >= 300 and self.ack:
            e.out.append(self.ack)
            e.stats.retransmissions += 1

    def _reinvite_with_credentials(self, msg: Scan, now: float) -> None:
        e = self.e
        assert e.password is not None
        line = authorization_line(
            msg, method="INVITE", uri=self.ruri, username=self.user, password=e.password, rng=e.rng
        )
        if line is None:
            self._fail(msg.status, linger=True)
            return
        self.auth_tried = True
        self.auth_line = line
        self.cseq += 1
        self.branch = f"z9hG4bK{e.tag_prefix}{self.n}i{self.cseq}"
        self.send_invite(now)

    def _answered(self, msg: Scan, now: float) -> None:
        e = self.e
        self.t200 = now
        e.record_answered(now)
        self.to_tag = msg.to_tag
        self.remote_target = msg.contact_uri() or self.ruri
        self.route = _route_set(msg.record_routes)
        # RFC 3261 §13.2.2.4: the ACK to a 2xx is its own transaction (new branch), sent to
        # the remote target through the route set.
        self.ack = e.builder.request(
            "ACK",
            self.remote_target,
            branch=f"z9hG4bK{e.tag_prefix}{self.n}a{self.cseq}",
            from_=self.from_hdr,
            to=msg.to.decode("utf-8", "replace"),
            call_id=self.call_id,
            cseq=self.cseq,
            extra=self.route,
        )
        e.out.append(self.ack)
        self.state = CONFIRMED
        e.schedule(self, now + e.hold_time())

    def _bye_response(self, msg: Scan, now: float) -> None:
        status = msg.status
        if status < 200:
            return
        if status < 300:
            self._succeed()
            return
        e = self.e
        if status in (401, 407) and not self.bye_auth_tried and e.password is not None:
            line = authorization_line(
                msg,
                method="BYE",
                uri=self.remote_target,
                username=self.user,
                password=e.password,
                rng=e.rng,
            )
            if line is not None:
                self.bye_auth_tried = True
                self.auth_line = line
                self._send_bye(now)
                return
        self._fail(_BYE_FAILED)

    def on_bye(self) -> bool:
        """The callee hung up first (a BYE in this dialog).  True if the call counts as
        successful (it was set up)."""
        was_up = self.state is CONFIRMED or self.state is BYE_SENT
        if was_up:
            self._succeed()
        elif self.state is not ENDED and self.state is not COMPLETED:
            self._fail(FailureReason.UNEXPECTED_MESSAGE)
        return was_up

    # -- timers ---------------------------------------------------------------------------------

    def on_timer(self, now: float) -> None:
        state = self.state
        e = self.e
        if state is CALLING:
            if now >= self.deadline:
                self._fail(_TIMEOUT)
                return
            e.out.append(self.request)
            e.stats.retransmissions += 1
            self.interval *= 2  # Timer A doubles without cap (RFC 3261 §17.1.1.2)
            e.schedule(self, min(now + self.interval, self.deadline))
        elif state is CONFIRMED:
            self._send_bye(now)
        elif state is BYE_SENT:
            if now >= self.deadline:
                self._fail(_BYE_FAILED)
                return
            e.out.append(self.request)
            e.stats.retransmissions += 1
            self.interval = min(self.interval * 2, e.t2)  # Timer E (RFC 3261 §17.1.2.2)
            e.schedule(self, min(now + self.interval, self.deadline))
        elif state is PROCEEDING:
            self._cancel(now)
        elif state is CANCELLING:
            self._fail(_TIMEOUT)
        elif state is COMPLETED:
            self.state = ENDED
            e.dialogs.pop(self.key, None)

    def _cancel(self, now: float) -> None:
        # RFC 3261 §9.1: CANCEL has the INVITE's branch, Request-URI, Call-ID, CSeq number.
        e = self.e
        e.out.append(
            e.builder.request(
                "CANCEL",
                self.ruri,
                branch=self.branch,
                from_=self.from_hdr,
                to=self.to_hdr,
                call_id=self.call_id,
                cseq=self.cseq,
            )
        )
        self.state = CANCELLING
        e.schedule(self, now + 64 * e.t1)

    # -- endings --------------------------------------------------------------------------------

    def abandon(self) -> bool:
        """The run ends with this call in progress: count it failed (``drain-timeout``).

        Returns False for a call already counted (lingering for Timer D, or ended)."""
        if self.state is COMPLETED or self.state is ENDED:
            return False
        self._fail(FailureReason.DRAIN_TIMEOUT)
        return True

    def _succeed(self) -> None:
        e = self.e
        e.stats.record_success(
            self.t200 - self.started, self.t18x - self.started if self.t18x >= 0 else None
        )
        self._end()

    def _fail(self, reason: FailureReason | int, *, linger: bool = False) -> None:
        self.e.stats.record_failure(reason)
        if linger and not self.e.reliable:
            # Timer D (RFC 3261 §17.1.1.2): stay to ACK retransmitted final responses, until
            # 32*T1 past the latest time Timer B allows a final response (started + 64*T1).
            self.e.active -= 1
            self.state = COMPLETED
            self.e.schedule(self, self.started + 64 * self.e.t1 + 32 * self.e.t1)
            return
        self._end()

    def _end(self) -> None:
        e = self.e
        e.active -= 1
        self.state = ENDED
        e.cancel(self)
        e.dialogs.pop(self.key, None)
