"""The rules of one outgoing call, as a table: (state, input) -> actions and the next state.

Theory of operation
-------------------
A call (:class:`~sipha.loadtest.uac_call.InviteCall`) sends an INVITE, waits for its answer,
ACKs it, holds, and sends BYE; or it is rejected, cancelled after its ring timeout, or times
out.  It has one timer: what the timer means depends on the state (Timer A then B while
CALLING, the ring timeout while PROCEEDING, the CANCEL's 64*T1 while CANCELLING, the hold
time while CONFIRMED, Timer E then F while BYE_SENT, Timer D while COMPLETED).  A timer that
fires before the state's deadline is ``RETRANSMIT_DUE``, one at the deadline ``DEADLINE``.

Every message and timer is first classified into a `CallInput` (`classify_response`); the
table gives the `Rule`: the actions (`CallAction`) in order and the next state.  A rule that
answers a digest challenge names what happens instead when the challenge cannot be answered
(``otherwise``); a rule that fails the call names the reason (``reason``; None = the status
code of the response).  Every (state, input) pair has a rule (checked at import, walked by
``tests/loadtest/test_call_tables_every_pair.py``); pairs that cannot happen or need nothing
(a late provisional, a 2xx to a call already failed: the callee's Timer H ends it, where RFC
3261 §13.2.2.4 would ACK and BYE it) are dropped, the state unchanged.

``COMPLETED`` keeps a failed call's Call-ID for Timer D (RFC 3261 §17.1.1.2) to ACK
retransmitted final responses; on a reliable transport Timer D is zero and the call goes
straight to ``ENDED``.  A call's outcome is reported once, by ``SUCCEED`` or ``FAIL``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sipha.loadtest.stats import FailureReason
from sipha.sip.fastenum import IdentityEnum

__all__ = [
    "BYE_BY_STATUS",
    "CALL_TABLE",
    "INVITE_BY_STATUS",
    "CallAction",
    "CallInput",
    "CallRule",
    "CallState",
    "classify_response",
]


class CallState(IdentityEnum):
    CALLING = "calling"  # INVITE sent, nothing heard: Timer A retransmits, B gives up
    PROCEEDING = "proceeding"  # a provisional came: waiting, until the ring timeout
    CANCELLING = "cancelling"  # the ring timeout sent a CANCEL
    CONFIRMED = "confirmed"  # answered and ACKed: holding
    BYE_SENT = "bye-sent"  # hold over: BYE sent, Timer E retransmits, F gives up
    COMPLETED = "completed"  # failed, counted; ACKs retransmitted finals until Timer D
    ENDED = "ended"  # counted and forgotten


class CallInput(IdentityEnum):
    INVITE_100 = "100 to the INVITE"
    INVITE_18X = "101-199 to the INVITE"
    INVITE_2XX = "2xx to the INVITE"
    INVITE_CHALLENGE = "401/407 to the INVITE, credentials not yet sent"
    INVITE_REJECTED = "another final >= 300 to the INVITE"
    BYE_1XX = "1xx to the BYE"
    BYE_2XX = "2xx to the BYE"
    BYE_CHALLENGE = "401/407 to the BYE, credentials not yet sent"
    BYE_REJECTED = "another final >= 300 to the BYE"
    CANCEL_ANSWERED = "a final response to the CANCEL"
    OTHER_RESPONSE = "a response to an earlier CSeq, a 1xx to the CANCEL, or unreadable"
    BYE_RECEIVED = "the callee's BYE"
    RETRANSMIT_DUE = "the timer fired before the state's deadline"
    DEADLINE = "the state's deadline passed"
    ABANDON = "the run is over (drain timeout)"


class CallAction(IdentityEnum):
    NOTE_RINGING = "remember when the first 18x came (setup latency)"
    ARM_RING_TIMEOUT = "a provisional stops Timer A; the ring timeout replaces Timer B"
    RETRANSMIT_INVITE = "send the INVITE again; Timer A doubles (RFC 3261 §17.1.1.2)"
    CONFIRM = "remember the dialog: To tag, remote target, route set (§12.1.2)"
    ACK_2XX = "ACK the 2xx: a new transaction, through the route set (§13.2.2.4)"
    RESEND_ACK = "send the ACK again: the peer retransmitted its final"
    ACK_FINAL = "ACK the non-2xx final on the INVITE's branch (§17.1.1.3)"
    AUTHENTICATE = "send the INVITE again with credentials, CSeq + 1, a new branch"
    ARM_HOLD = "hold the call for its hold time"
    SEND_CANCEL = "CANCEL the INVITE (§9.1), Timer E; wait 64*T1 for the INVITE's 487"
    SEND_BYE = "send the BYE; Timer E / F"
    RETRANSMIT_REQUEST = "send the BYE or CANCEL again; Timer E doubles up to T2 (§17.1.2.2)"
    STOP_CANCEL = "the CANCEL is answered: no more of it; the 487 may still come"
    BYE_WITH_CREDENTIALS = "send the BYE again with credentials, CSeq + 1"
    SUCCEED = "report the call successful, with its setup latencies"
    FAIL = "report the call failed, with the rule's reason"


@dataclass(frozen=True, slots=True)
class CallRule:
    """One cell: perform ``actions`` in order, go to ``next_state``.  ``reason`` is FAIL's
    (None: the response's status code); ``otherwise`` replaces a rule whose challenge cannot
    be answered (no usable challenge in the response)."""

    actions: tuple[CallAction, ...]
    next_state: CallState
    reason: FailureReason | None = None
    otherwise: CallRule | None = None


def classify_response(
    status: int, invite: bool, current: bool, can_authenticate: bool, *, cancel: bool = False
) -> CallInput:
    """The input a response is: ``invite`` when its CSeq method is INVITE (else BYE, or
    CANCEL with ``cancel``), ``current`` when its CSeq number is the call's current one for
    that method, ``can_authenticate`` when the call has a password and has not yet answered
    a challenge for this request."""
    if not current:
        return CallInput.OTHER_RESPONSE
    if cancel:
        return CallInput.CANCEL_ANSWERED if status >= 200 else CallInput.OTHER_RESPONSE
    if invite:
        if status < 200:
            return CallInput.INVITE_100 if status == 100 else CallInput.INVITE_18X
        if status < 300:
            return CallInput.INVITE_2XX
        if (status == 401 or status == 407) and can_authenticate:
            return CallInput.INVITE_CHALLENGE
        return CallInput.INVITE_REJECTED
    if status < 200:
        return CallInput.BYE_1XX
    if status < 300:
        return CallInput.BYE_2XX
    if (status == 401 or status == 407) and can_authenticate:
        return CallInput.BYE_CHALLENGE
    return CallInput.BYE_REJECTED


INVITE_BY_STATUS: tuple[CallInput, ...] = tuple(
    classify_response(status, True, True, True) for status in range(1000)
)
"""`classify_response` for a current INVITE response, by status (0-999, as a scanned status
line gives), a challenge counted as answerable; the hot path reads this instead of calling."""
BYE_BY_STATUS: tuple[CallInput, ...] = tuple(
    classify_response(status, False, True, True) for status in range(1000)
)
"""The same for a current BYE response."""

_S = CallState
_I = CallInput
_A = CallAction
_R = CallRule
_TIMEOUT = FailureReason.TIMEOUT_B
_BYE_FAILED = FailureReason.BYE_FAILED


def _drop(state: CallState) -> CallRule:
    return _R((), state)


def _build() -> dict[tuple[CallState, CallInput], CallRule]:
    t: dict[tuple[CallState, CallInput], CallRule] = {
        (s, i): _drop(s) for s in CallState for i in CallInput
    }
    answered = _R((_A.CONFIRM, _A.ACK_2XX, _A.ARM_HOLD), _S.CONFIRMED)
    rejected = _R((_A.ACK_FINAL, _A.FAIL), _S.COMPLETED)  # reason: the status
    challenged = _R((_A.ACK_FINAL, _A.AUTHENTICATE), _S.CALLING, otherwise=rejected)
    early_bye = _R((_A.FAIL,), _S.ENDED, FailureReason.UNEXPECTED_MESSAGE)
    drained = _R((_A.FAIL,), _S.ENDED, FailureReason.DRAIN_TIMEOUT)
    for s in (_S.CALLING, _S.PROCEEDING):
        t[s, _I.INVITE_2XX] = answered
        t[s, _I.INVITE_CHALLENGE] = challenged
        t[s, _I.INVITE_REJECTED] = rejected
        t[s, _I.BYE_RECEIVED] = early_bye
        t[s, _I.ABANDON] = drained
    t[_S.CALLING, _I.INVITE_100] = _R((_A.ARM_RING_TIMEOUT,), _S.PROCEEDING)
    t[_S.CALLING, _I.INVITE_18X] = _R((_A.NOTE_RINGING, _A.ARM_RING_TIMEOUT), _S.PROCEEDING)
    t[_S.CALLING, _I.RETRANSMIT_DUE] = _R((_A.RETRANSMIT_INVITE,), _S.CALLING)
    t[_S.CALLING, _I.DEADLINE] = _R((_A.FAIL,), _S.ENDED, _TIMEOUT)  # Timer B
    t[_S.PROCEEDING, _I.INVITE_18X] = _R((_A.NOTE_RINGING,), _S.PROCEEDING)
    t[_S.PROCEEDING, _I.DEADLINE] = _R((_A.SEND_CANCEL,), _S.CANCELLING)  # ring timeout
    # Cancelling: the 487 (or any final) ends it as a timeout; a 2xx that raced the CANCEL
    # sets the call up after all.
    cancelled = _R((_A.ACK_FINAL, _A.FAIL), _S.COMPLETED, _TIMEOUT)
    t[_S.CANCELLING, _I.INVITE_18X] = _R((_A.NOTE_RINGING,), _S.CANCELLING)
    t[_S.CANCELLING, _I.INVITE_2XX] = answered
    t[_S.CANCELLING, _I.INVITE_CHALLENGE] = cancelled
    t[_S.CANCELLING, _I.INVITE_REJECTED] = cancelled
    # The CANCEL is a non-INVITE transaction of its own (§9.1): retransmitted until answered.
    t[_S.CANCELLING, _I.RETRANSMIT_DUE] = _R((_A.RETRANSMIT_REQUEST,), _S.CANCELLING)
    t[_S.CANCELLING, _I.CANCEL_ANSWERED] = _R((_A.STOP_CANCEL,), _S.CANCELLING)
    t[_S.CANCELLING, _I.DEADLINE] = _R((_A.FAIL,), _S.ENDED, _TIMEOUT)
    t[_S.CANCELLING, _I.BYE_RECEIVED] = early_bye
    t[_S.CANCELLING, _I.ABANDON] = drained
    # Up: a retransmitted 2xx means our ACK was lost; the callee may hang up first.
    for s in (_S.CONFIRMED, _S.BYE_SENT):
        t[s, _I.INVITE_2XX] = _R((_A.RESEND_ACK,), s)
        t[s, _I.BYE_RECEIVED] = _R((_A.SUCCEED,), _S.ENDED)
        t[s, _I.ABANDON] = drained
    t[_S.CONFIRMED, _I.DEADLINE] = _R((_A.SEND_BYE,), _S.BYE_SENT)  # hold time over
    t[_S.BYE_SENT, _I.BYE_2XX] = _R((_A.SUCCEED,), _S.ENDED)
    bye_failed = _R((_A.FAIL,), _S.ENDED, _BYE_FAILED)
    t[_S.BYE_SENT, _I.BYE_CHALLENGE] = _R(
        (_A.BYE_WITH_CREDENTIALS,), _S.BYE_SENT, otherwise=bye_failed
    )
    t[_S.BYE_SENT, _I.BYE_REJECTED] = bye_failed
    t[_S.BYE_SENT, _I.RETRANSMIT_DUE] = _R((_A.RETRANSMIT_REQUEST,), _S.BYE_SENT)
    t[_S.BYE_SENT, _I.DEADLINE] = bye_failed  # Timer F
    # Completed (counted failed): ACK what is retransmitted until Timer D.
    t[_S.COMPLETED, _I.INVITE_CHALLENGE] = _R((_A.RESEND_ACK,), _S.COMPLETED)
    t[_S.COMPLETED, _I.INVITE_REJECTED] = _R((_A.RESEND_ACK,), _S.COMPLETED)
    t[_S.COMPLETED, _I.DEADLINE] = _drop(_S.ENDED)
    return t


CALL_TABLE: Mapping[tuple[CallState, CallInput], CallRule] = _build()
"""(state, input) -> rule for one call; complete over all pairs."""


def _check(table: Mapping[tuple[CallState, CallInput], CallRule]) -> None:
    # Checked once at import: complete; otherwise exactly on the challenge rules; FAIL and
    # SUCCEED only on the way out of the counted states, and never twice.
    missing = {(s, i) for s in CallState for i in CallInput} - set(table)
    if missing:
        raise AssertionError(f"call table misses {sorted(str(m) for m in missing)}")
    counted = {_S.COMPLETED, _S.ENDED}
    for pair, rule in table.items():
        answers = _A.AUTHENTICATE in rule.actions or _A.BYE_WITH_CREDENTIALS in rule.actions
        if answers != (rule.otherwise is not None):
            raise AssertionError(f"call rule {pair}: otherwise goes with the challenge")
        for r in (rule, rule.otherwise):
            if r is None:
                continue
            reports = (_A.FAIL in r.actions) + (_A.SUCCEED in r.actions)
            if reports > 1 or (reports == 1) != (
                pair[0] not in counted and r.next_state in counted
            ):
                raise AssertionError(f"call rule {pair}: the outcome is reported once, on leaving")


_check(CALL_TABLE)
