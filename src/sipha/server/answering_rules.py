"""The rules of one call the server answers itself (a dialplan action), as a table.

Theory of operation
-------------------
A call of the answering service (:mod:`sipha.server.answering_core`) is in one `AnswerPhase`:

* ``RINGING``: ``ring-no-answer``: 180 sent; it rings until the caller's CANCEL, or 480 at
  ``ring_timeout``;
* ``ALERTING``: ``answer``: 180 sent; the answer comes after ``ring_time``;
* ``STORING``: the dialog record is being written to the shared store, so that any server can
  end the call if this one dies; the 200 leaves once it is written (or failed: availability
  first, only the failover is lost);
* ``ABANDONED``: the caller CANCELled (or BYEd the early dialog) while the record was being
  written: 487 went to the caller, and the record is deleted once written;
* ``ANSWERED``: the 200 went out; on UDP it is retransmitted until the ACK (RFC 3261
  §13.3.1.4: T1 doubling up to T2), and the call is ended with a BYE after 64*T1 without one;
* ``CONFIRMED``: the ACK came; at ``max_hold`` the server sends the BYE itself (§15.1.1);
* ``ENDED``: forgotten.

Inputs (`AnswerInput`) are the caller's CANCEL, ACK and BYE, the store's answer, and the call's
timers (`classify_timer` names which). `ANSWER_TABLE` maps every (phase, input) pair to a
`Rule` (the actions in order, the next phase); pairs that cannot occur (a ring timer once
answered, an ACK before the 200) are dropped, the phase unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sipha.sip.fastenum import IdentityEnum

__all__ = ["ANSWER_TABLE", "AnswerInput", "AnswerPhase", "Do", "Rule", "Timer", "classify_timer"]


class AnswerPhase(IdentityEnum):
    RINGING = "ringing"
    ALERTING = "alerting"
    STORING = "storing"
    ABANDONED = "abandoned"
    ANSWERED = "answered"
    CONFIRMED = "confirmed"
    ENDED = "ended"


class AnswerInput(IdentityEnum):
    RING_TIMEOUT = "ring_timeout passed (ring-no-answer)"
    ANSWER_TIME = "ring_time passed (answer)"
    STORED = "the dialog record is written (or the write failed)"
    RETRANSMIT = "the 2xx retransmission interval passed"
    ACK_TIMEOUT = "64*T1 passed without the ACK"
    HOLD_EXPIRED = "max_hold passed"
    ACK = "the caller's ACK of the 2xx"
    CANCEL = "the caller's CANCEL"
    BYE = "a BYE in the dialog"


class Timer(IdentityEnum):
    """The timers of a call (at most one deadline each)."""

    RING = "ring"
    RETRANSMIT = "retransmit"
    HOLD = "hold"


def classify_timer(timer: Timer, phase: AnswerPhase, *, ack_overdue: bool) -> AnswerInput:
    """The input a timer that fired is: the ring timer means 480 while ringing and the answer
    otherwise; the retransmit timer gives up once ``ack_overdue`` (64*T1 passed)."""
    if timer is Timer.RING:
        return AnswerInput.RING_TIMEOUT if phase is AnswerPhase.RINGING else AnswerInput.ANSWER_TIME
    if timer is Timer.RETRANSMIT:
        return AnswerInput.ACK_TIMEOUT if ack_overdue else AnswerInput.RETRANSMIT
    return AnswerInput.HOLD_EXPIRED


class Do(IdentityEnum):
    """The actions of `ANSWER_TABLE`, performed in order by `answering_core.AnsweringCore`."""

    FORGET = "stop the call's timers and forget it"
    REJECT_480 = "answer the INVITE 480 Temporarily Unavailable"
    REJECT_487 = "answer the INVITE 487 Request Terminated"
    OK_BYE = "answer the BYE 200"
    STORE_DIALOG = "write the dialog record to the shared store"
    SEND_2XX = "answer 200 with SDP; start the retransmissions (UDP) and the hold timer"
    RETRANSMIT_2XX = "send the 200 again; the next interval doubles, up to T2"
    CONFIRM = "stop retransmitting; the peer that ACKed our tag is not a spoofed source"
    COUNT_HOLD = "count a call ended by max_hold"
    SEND_BYE = "send a BYE along the dialog's route"
    DELETE_DIALOG = "delete the dialog record from the shared store"


@dataclass(frozen=True, slots=True)
class Rule:
    actions: tuple[Do, ...]
    next_phase: AnswerPhase


_P = AnswerPhase
_I = AnswerInput
_D = Do
_DROP: tuple[Do, ...] = ()
_END_BY_BYE = (_D.FORGET, _D.OK_BYE, _D.DELETE_DIALOG)
_HANG_UP = (_D.FORGET, _D.SEND_BYE, _D.DELETE_DIALOG)


def _row(phase: AnswerPhase, cells: dict[AnswerInput, Rule]) -> dict[AnswerInput, Rule]:
    """``cells``, and every other input dropped."""
    return {i: cells.get(i, Rule(_DROP, phase)) for i in AnswerInput}


def _ringing(phase: AnswerPhase) -> dict[AnswerInput, Rule]:
    timer = _I.RING_TIMEOUT if phase is _P.RINGING else _I.ANSWER_TIME
    timer_rule = (Rule((_D.FORGET, _D.REJECT_480), _P.ENDED) if phase is _P.RINGING
                  else Rule((_D.STORE_DIALOG,), _P.STORING))
    return _row(phase, {
        timer: timer_rule,
        _I.CANCEL: Rule((_D.FORGET, _D.REJECT_487), _P.ENDED),  # RFC 3261 §9.2
        # A BYE in the early dialog (§15) ends the INVITE too.
        _I.BYE: Rule((_D.FORGET, _D.REJECT_487, *_END_BY_BYE[1:]), _P.ENDED),
    })


ANSWER_TABLE: Mapping[tuple[AnswerPhase, AnswerInput], Rule] = {
    (phase, i): rule
    for phase, row in {
        _P.RINGING: _ringing(_P.RINGING),
        _P.ALERTING: _ringing(_P.ALERTING),
        _P.STORING: _row(_P.STORING, {
            _I.STORED: Rule((_D.SEND_2XX,), _P.ANSWERED),
            # The write is in flight: the record is deleted once written (ABANDONED).
            _I.CANCEL: Rule((_D.FORGET, _D.REJECT_487), _P.ABANDONED),
            _I.BYE: Rule((_D.FORGET, _D.REJECT_487, _D.OK_BYE), _P.ABANDONED),
        }),
        _P.ABANDONED: _row(_P.ABANDONED, {
            _I.STORED: Rule((_D.DELETE_DIALOG,), _P.ENDED),
        }),
        _P.ANSWERED: _row(_P.ANSWERED, {
            _I.RETRANSMIT: Rule((_D.RETRANSMIT_2XX,), _P.ANSWERED),
            _I.ACK_TIMEOUT: Rule(_HANG_UP, _P.ENDED),  # §13.3.1.4: no ACK, end the dialog
            _I.ACK: Rule((_D.CONFIRM,), _P.CONFIRMED),
            _I.HOLD_EXPIRED: Rule((_D.COUNT_HOLD, *_HANG_UP), _P.ENDED),
            _I.BYE: Rule(_END_BY_BYE, _P.ENDED),
            # CANCEL: too late, the call is answered (the caller got 200 to its CANCEL).
        }),
        _P.CONFIRMED: _row(_P.CONFIRMED, {
            _I.ACK: Rule((_D.CONFIRM,), _P.CONFIRMED),  # a retransmitted ACK
            _I.HOLD_EXPIRED: Rule((_D.COUNT_HOLD, *_HANG_UP), _P.ENDED),
            _I.BYE: Rule(_END_BY_BYE, _P.ENDED),
        }),
        _P.ENDED: _row(_P.ENDED, {}),
    }.items()
    for i, rule in row.items()
}
"""(phase, input) -> rule; complete over all pairs."""
