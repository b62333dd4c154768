"""The rules of one proxied request (RFC 3261 §16), as two tables: the call's and a branch's.

Theory of operation
-------------------
A request the server proxies statefully is a *call* (:class:`~sipha.server.proxy_core.Call`):
its server transaction towards the caller and the *branches* it forks to (§16.6: one client
transaction per target, every contact of the AoR at once, parallel forking).

The call is in one `CallPhase`:

* ``LOCATING``: the location service (or the DNS) is asked for the targets; no branch yet.
  For an INVITE, 100 Trying went upstream and Timer C runs already;
* ``PROCEEDING``: branches are out and no final response went upstream;
* ``CANCELLED``: the caller CANCELled (§16.10): every branch is being CANCELled, and the
  caller will get 487 (or a 6xx) once every branch has its final;
* ``ACCEPTED``: a 2xx went upstream (§16.7 step 5); later 2xx still go up (RFC 6026);
* ``COMPLETED``: a final non-2xx went upstream (chosen, or answered by us).

Every input is a `CallInput`: the location answer (targets, or a status such as 404/480/500),
a response from a branch classified by status class and by whether it is the final that
completes the last branch (`classify`), the caller's CANCEL, and Timer C (§16.6 step 11).
A branch whose client transaction ends without a final counts as a final 408 (timeout) or
503 (transport error) from that branch (§16.7 step 2), so it classifies like a response.

`CALL_TABLE` maps every (phase, input) pair to a `Rule`: the actions (`Do`) in order and the
next phase. Pairs that cannot occur (a location answer once branches exist, Timer C after the
final) are answered too: dropped, the phase unchanged. §16.7's choice of the best final
(`rank`: any 6xx, else the lowest status; 503 becomes 500) is made by `Do.SEND_BEST`.

Each branch has its own `BranchPhase`, moved by `BRANCH_TABLE` (branch phase x `BranchInput`
-> send a CANCEL or not, next phase): a CANCEL goes only to a branch that answered
provisionally (RFC 3261 §9.1); one wanted earlier is sent on the branch's first provisional.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sipha.sip.fastenum import IdentityEnum

__all__ = [
    "BRANCH_TABLE",
    "CALL_TABLE",
    "BranchInput",
    "BranchPhase",
    "BranchRule",
    "CallInput",
    "CallPhase",
    "Do",
    "Rule",
    "classify",
    "rank",
]


class CallPhase(IdentityEnum):
    """The phase of a proxied request (see the module docstring)."""

    LOCATING = "locating"
    PROCEEDING = "proceeding"
    CANCELLED = "cancelled"
    ACCEPTED = "accepted"
    COMPLETED = "completed"


class CallInput(IdentityEnum):
    LOCATED = "the targets are known"
    NOT_LOCATED = "no target: a status to answer (404, 480, 482, 500, 503, 408)"
    RESPONSE_100 = "100 from a branch"
    RESPONSE_1XX = "101-199 from a branch"
    RESPONSE_2XX = "2xx from a branch"
    RESPONSE_FINAL = "3xx-5xx final of a branch, other branches still open"
    RESPONSE_6XX = "6xx final of a branch, other branches still open"
    LAST_FINAL = "3xx-6xx final of the last open branch"
    LATE_FINAL = "3xx-6xx from a branch that has its final already"
    CANCEL = "the caller's CANCEL"
    TIMER_C = "Timer C fired"


class Do(IdentityEnum):
    """The actions of `CALL_TABLE`, performed in order by `proxy_core.ProxyCore`."""

    FORK = "send the request to every target, each in a branch of its own"
    ANSWER = "answer the caller ourselves with the status given (and a To tag of ours)"
    ANSWER_487 = "answer the caller 487 Request Terminated"
    BRANCH_PROCEEDING = "the branch answered provisionally: send the CANCEL it waits for"
    BRANCH_FINAL = "the branch has its final: remember it, and the best final so far"
    RESET_TIMER_C = "restart Timer C (a provisional other than 100, §16.7 step 2)"
    FORWARD_UPSTREAM = "send the response to the caller (statelessly once it has its final)"
    CANCEL_OTHERS = "CANCEL every other branch without a final (§16.7 step 10)"
    CANCEL_ALL = "CANCEL every branch without a final (§16.10)"
    FAIL_OPEN = "count every branch without a final as 408 (Timer C, §16.6 step 11)"
    SEND_BEST = "send the best final upstream (§16.7 step 6)"
    SEND_BEST_CANCELLED = "send 487 upstream, or the best final when it is a 6xx"


@dataclass(frozen=True, slots=True)
class Rule:
    """One cell of `CALL_TABLE`: perform ``actions``, go to ``next_phase``."""

    actions: tuple[Do, ...]
    next_phase: CallPhase


def rank(status: int) -> tuple[int, int]:
    """§16.7 step 6: any 6xx wins, else the lowest status (a lower rank is better)."""
    return (0 if status >= 600 else 1, status)


def classify(status: int, *, branch_has_final: bool, others_open: bool) -> CallInput:
    """The input a branch's response (or its synthetic 408/503) is to its call.

    ``branch_has_final``: the branch had a final before this one; ``others_open``: another
    branch of the call still has no final."""
    if status < 200:
        return CallInput.RESPONSE_100 if status == 100 else CallInput.RESPONSE_1XX
    if status < 300:
        return CallInput.RESPONSE_2XX
    if branch_has_final:
        return CallInput.LATE_FINAL
    if not others_open:
        return CallInput.LAST_FINAL
    return CallInput.RESPONSE_6XX if status >= 600 else CallInput.RESPONSE_FINAL


_P = CallPhase
_I = CallInput
_D = Do
_DROP: tuple[Do, ...] = ()


def _open(phase: CallPhase) -> dict[CallInput, Rule]:
    """PROCEEDING and CANCELLED: branches are out and no final went upstream."""
    cancelled = phase is _P.CANCELLED
    send_best = _D.SEND_BEST_CANCELLED if cancelled else _D.SEND_BEST
    return {
        _I.LOCATED: Rule(_DROP, phase),  # cannot occur: the branches exist
        _I.NOT_LOCATED: Rule(_DROP, phase),
        # A 100 is not forwarded (§16.7 step 5), but it is a provisional: the branch may now
        # be CANCELled (§9.1). It does not restart Timer C (§16.7 step 2).
        _I.RESPONSE_100: Rule((_D.BRANCH_PROCEEDING,), phase),
        _I.RESPONSE_1XX: Rule(
            (_D.BRANCH_PROCEEDING, _D.RESET_TIMER_C, _D.FORWARD_UPSTREAM), phase
        ),
        # The first 2xx wins, also when it raced the caller's CANCEL (the caller BYEs it).
        _I.RESPONSE_2XX: Rule(
            (_D.BRANCH_FINAL, _D.FORWARD_UPSTREAM, _D.CANCEL_OTHERS), _P.ACCEPTED
        ),
        _I.RESPONSE_FINAL: Rule((_D.BRANCH_FINAL,), phase),
        # §16.7 step 5: a 6xx is not forwarded at once; the other branches are CANCELled.
        _I.RESPONSE_6XX: Rule((_D.BRANCH_FINAL, _D.CANCEL_OTHERS), phase),
        _I.LAST_FINAL: Rule((_D.BRANCH_FINAL, send_best), _P.COMPLETED),
        _I.LATE_FINAL: Rule(_DROP, phase),
        _I.CANCEL: Rule(_DROP if cancelled else (_D.CANCEL_ALL,), _P.CANCELLED),
        _I.TIMER_C: Rule((_D.CANCEL_ALL, _D.FAIL_OPEN, send_best), _P.COMPLETED),
    }


def _locating() -> dict[CallInput, Rule]:
    same = _P.LOCATING
    return {
        _I.LOCATED: Rule((_D.FORK,), _P.PROCEEDING),
        _I.NOT_LOCATED: Rule((_D.ANSWER,), _P.COMPLETED),
        **{i: Rule(_DROP, same) for i in (
            _I.RESPONSE_100, _I.RESPONSE_1XX, _I.RESPONSE_2XX, _I.RESPONSE_FINAL,
            _I.RESPONSE_6XX, _I.LAST_FINAL, _I.LATE_FINAL,
        )},  # cannot occur: no branch yet
        # Nothing is forked yet: the caller gets its 487 at once; the lookup's answer, when
        # it comes, finds the call completed and is dropped.
        _I.CANCEL: Rule((_D.ANSWER_487,), _P.COMPLETED),
        _I.TIMER_C: Rule((_D.ANSWER,), _P.COMPLETED),  # 408: the lookup took too long
    }


def _answered(phase: CallPhase) -> dict[CallInput, Rule]:
    """ACCEPTED and COMPLETED: the caller has its final; branches may still answer."""
    return {
        _I.LOCATED: Rule(_DROP, phase),  # a lookup that finished after a CANCEL or Timer C
        _I.NOT_LOCATED: Rule(_DROP, phase),
        # A branch CANCELled before it rang gets its CANCEL now (§9.1).
        _I.RESPONSE_100: Rule((_D.BRANCH_PROCEEDING,), phase),
        _I.RESPONSE_1XX: Rule((_D.BRANCH_PROCEEDING,), phase),
        # Every 2xx goes up (RFC 6026), also a late one from a branch cancelled by a 6xx,
        # Timer C or the caller: the caller ACKs and BYEs it; no ghost call stays behind.
        _I.RESPONSE_2XX: Rule((_D.BRANCH_FINAL, _D.FORWARD_UPSTREAM), phase),
        _I.RESPONSE_FINAL: Rule((_D.BRANCH_FINAL,), phase),  # a loser's 487
        _I.RESPONSE_6XX: Rule((_D.BRANCH_FINAL,), phase),
        _I.LAST_FINAL: Rule((_D.BRANCH_FINAL,), phase),
        _I.LATE_FINAL: Rule(_DROP, phase),
        _I.CANCEL: Rule(_DROP, phase),  # too late: the caller has its final
        _I.TIMER_C: Rule(_DROP, phase),  # cannot occur: stopped with the final
    }


CALL_TABLE: Mapping[tuple[CallPhase, CallInput], Rule] = {
    (phase, i): rule
    for phase, row in {
        _P.LOCATING: _locating(),
        _P.PROCEEDING: _open(_P.PROCEEDING),
        _P.CANCELLED: _open(_P.CANCELLED),
        _P.ACCEPTED: _answered(_P.ACCEPTED),
        _P.COMPLETED: _answered(_P.COMPLETED),
    }.items()
    for i, rule in row.items()
}
"""(call phase, input) -> rule; complete over all pairs."""


class BranchPhase(IdentityEnum):
    """The phase of one branch (one target, one client transaction)."""

    CALLING = "calling"
    """Sent, no response."""
    PROCEEDING = "proceeding"
    """Answered provisionally: a CANCEL may be sent to it."""
    CANCEL_WANTED = "cancel wanted"
    """To be CANCELled, but silent so far: the CANCEL waits for its first provisional."""
    CANCELLED = "cancelled"
    """We sent it a CANCEL."""
    COMPLETED = "completed"
    """It has its final (a real one, or a synthetic 408/503)."""


class BranchInput(IdentityEnum):
    PROVISIONAL = "a provisional response"
    CANCEL = "the call CANCELs this branch"
    FINAL = "a final response (or the transaction ended without one)"


@dataclass(frozen=True, slots=True)
class BranchRule:
    send_cancel: bool
    next_phase: BranchPhase


_B = BranchPhase
_BI = BranchInput
BRANCH_TABLE: Mapping[tuple[BranchPhase, BranchInput], BranchRule] = {
    (_B.CALLING, _BI.PROVISIONAL): BranchRule(False, _B.PROCEEDING),
    (_B.CALLING, _BI.CANCEL): BranchRule(False, _B.CANCEL_WANTED),  # §9.1: not before a 1xx
    (_B.CALLING, _BI.FINAL): BranchRule(False, _B.COMPLETED),
    (_B.PROCEEDING, _BI.PROVISIONAL): BranchRule(False, _B.PROCEEDING),
    (_B.PROCEEDING, _BI.CANCEL): BranchRule(True, _B.CANCELLED),
    (_B.PROCEEDING, _BI.FINAL): BranchRule(False, _B.COMPLETED),
    (_B.CANCEL_WANTED, _BI.PROVISIONAL): BranchRule(True, _B.CANCELLED),
    (_B.CANCEL_WANTED, _BI.CANCEL): BranchRule(False, _B.CANCEL_WANTED),
    (_B.CANCEL_WANTED, _BI.FINAL): BranchRule(False, _B.COMPLETED),
    (_B.CANCELLED, _BI.PROVISIONAL): BranchRule(False, _B.CANCELLED),  # once is enough
    (_B.CANCELLED, _BI.CANCEL): BranchRule(False, _B.CANCELLED),
    (_B.CANCELLED, _BI.FINAL): BranchRule(False, _B.COMPLETED),
    (_B.COMPLETED, _BI.PROVISIONAL): BranchRule(False, _B.COMPLETED),
    (_B.COMPLETED, _BI.CANCEL): BranchRule(False, _B.COMPLETED),  # nothing left to cancel
    (_B.COMPLETED, _BI.FINAL): BranchRule(False, _B.COMPLETED),
}
"""(branch phase, input) -> whether to send a CANCEL, next phase; complete over all pairs."""


def _check() -> None:
    # Checked once at import: both tables answer every pair.
    missing: list[object] = [
        (p, i) for p in CallPhase for i in CallInput if (p, i) not in CALL_TABLE
    ]
    missing += [(b, i) for b in BranchPhase for i in BranchInput if (b, i) not in BRANCH_TABLE]
    if missing:
        raise AssertionError(f"proxy tables miss {missing}")


_check()
