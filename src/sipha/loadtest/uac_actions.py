"""The actions of the outgoing call's table (:mod:`sipha.loadtest.uac_table`), one function each.

Each takes (call, rule, message or None, now) and does one thing to the call, and through its
narrow :class:`~sipha.loadtest.uac_call.CallHost`.  The table guarantees the message is there
for the actions that read one (they follow a response input).  `ROWS` is the table with every
action resolved to its function once, by state then input: the call's hot path does two
identity-hashed lookups and calls the functions, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sipha.loadtest.uac_table import CALL_TABLE, CallAction, CallInput, CallRule, CallState
from sipha.loadtest.wire import Scan

if TYPE_CHECKING:
    from sipha.loadtest.uac_call import InviteCall

__all__ = ["ROWS", "Compiled", "Step"]

Step = Callable[["InviteCall", CallRule, Scan | None, float], None]


def _route_set(record_routes: list[bytes]) -> str:
    # RFC 3261 §12.1.2: the UAC's route set is the Record-Route entries in reverse order.
    # Entries are split on commas, which do not occur inside the URIs a proxy records.
    if not record_routes:
        return ""
    entries = [e.strip() for v in record_routes for e in v.split(b",") if e.strip()]
    entries.reverse()
    return "".join(f"Route: {e.decode('utf-8', 'replace')}\r\n" for e in entries)


def _note_ringing(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    if c.t18x < 0:
        c.t18x = now


def _arm_ring_timeout(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    # RFC 3261 §17.1.1.2: a provisional stops Timer A; the TU's ring timeout replaces Timer B.
    c.deadline = c.started + c.s.ring_timeout
    c.host.arm(c, c.deadline)


def _retransmit_invite(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    c.interval *= 2  # Timer A doubles without cap (RFC 3261 §17.1.1.2)
    c.retransmit(now)


def _retransmit_request(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    c.interval = min(c.interval * 2, c.s.timers.t2)  # Timer E (RFC 3261 §17.1.2.2)
    c.retransmit(now)


def _confirm(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    assert msg is not None
    c.t200 = now
    c.host.call_answered(now)
    c.to_tag = msg.to_tag
    c.remote_target = msg.contact_uri() or c.ruri
    c.route = _route_set(msg.record_routes)


def _ack_2xx(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    # RFC 3261 §13.2.2.4: the ACK to a 2xx is its own transaction (new branch), sent to the
    # remote target through the route set.
    assert msg is not None
    s = c.s
    c.ack = s.builder.request(
        "ACK",
        c.remote_target,
        branch=f"z9hG4bK{s.tag_prefix}{c.n}a{c.cseq}",
        from_=c.from_hdr,
        to=msg.to.decode("utf-8", "replace"),
        call_id=c.call_id,
        cseq=c.cseq,
        extra=c.route,
    )
    c.host.out.append(c.ack)


def _resend_ack(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    if c.ack:
        c.host.out.append(c.ack)
        c.host.retransmitted()


def _ack_final(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    # RFC 3261 §17.1.1.3: same branch and Request-URI as the INVITE, To from the response.
    assert msg is not None
    c.ack = c.s.builder.request(
        "ACK",
        c.ruri,
        branch=c.branch,
        from_=c.from_hdr,
        to=msg.to.decode("utf-8", "replace"),
        call_id=c.call_id,
        cseq=c.cseq,
    )
    c.host.out.append(c.ack)


def _authenticate(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    c.auth_tried = True
    c.auth_line = c.pending_line
    c.cseq += 1
    c.invite_cseq = c.cseq
    c.branch = f"z9hG4bK{c.s.tag_prefix}{c.n}i{c.cseq}"
    c.send_invite(now)


def _arm_hold(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    c.deadline = now + c.host.hold_time()
    c.host.arm(c, c.deadline)


def _send_cancel(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    # RFC 3261 §9.1: CANCEL has the INVITE's branch, Request-URI, Call-ID, CSeq number.  It is
    # a non-INVITE transaction: Timer E retransmits it until answered; the call waits 64*T1
    # from now for the INVITE's final response.
    c.request = c.s.builder.request(
        "CANCEL",
        c.ruri,
        branch=c.branch,
        from_=c.from_hdr,
        to=c.to_hdr,
        call_id=c.call_id,
        cseq=c.cseq,
    )
    c.host.out.append(c.request)
    timers = c.s.timers
    c.interval = timers.t1
    c.deadline = now + 64 * timers.t1
    c.host.arm(c, c.deadline if timers.reliable else now + timers.t1)


def _stop_cancel(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    c.host.arm(c, c.deadline)


def _send_bye(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    c.send_bye(now)


def _bye_with_credentials(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    c.bye_auth_tried = True
    c.auth_line = c.pending_line
    c.send_bye(now)


def _succeed(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    c.host.call_succeeded(c.t200 - c.started, c.t18x - c.started if c.t18x >= 0 else None)


def _fail(c: InviteCall, rule: CallRule, msg: Scan | None, now: float) -> None:
    if rule.reason is not None:
        c.host.call_failed(rule.reason)
    else:
        assert msg is not None  # a rule without a reason fails with the response's status
        c.host.call_failed(msg.status)


_A = CallAction
_PERFORM: dict[CallAction, Step] = {
    _A.NOTE_RINGING: _note_ringing,
    _A.ARM_RING_TIMEOUT: _arm_ring_timeout,
    _A.RETRANSMIT_INVITE: _retransmit_invite,
    _A.CONFIRM: _confirm,
    _A.ACK_2XX: _ack_2xx,
    _A.RESEND_ACK: _resend_ack,
    _A.ACK_FINAL: _ack_final,
    _A.AUTHENTICATE: _authenticate,
    _A.ARM_HOLD: _arm_hold,
    _A.SEND_CANCEL: _send_cancel,
    _A.SEND_BYE: _send_bye,
    _A.RETRANSMIT_REQUEST: _retransmit_request,
    _A.STOP_CANCEL: _stop_cancel,
    _A.BYE_WITH_CREDENTIALS: _bye_with_credentials,
    _A.SUCCEED: _succeed,
    _A.FAIL: _fail,
}
assert set(_PERFORM) == set(CallAction), "every call action has a performer"

Compiled = tuple[CallRule, tuple[Step, ...], "tuple[CallRule, tuple[Step, ...], None] | None"]


def _compile(rule: CallRule) -> Compiled:
    otherwise = rule.otherwise
    return (
        rule,
        tuple(_PERFORM[a] for a in rule.actions),
        None if otherwise is None else (otherwise, tuple(_PERFORM[a] for a in otherwise.actions),
                                        None),
    )


ROWS: dict[CallState, dict[CallInput, Compiled]] = {
    state: {event: _compile(CALL_TABLE[state, event]) for event in CallInput}
    for state in CallState
}
