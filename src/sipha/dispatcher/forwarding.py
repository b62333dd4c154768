"""The dispatcher's forwarding rules for one open transaction, as a table.

Theory of operation
-------------------
An initial request (no To tag) opens a transaction (`transactions.Pending`): the request goes to
one server (an *attempt*, with its own signed branch); when that server stays silent for
``failover_timeout`` or answers a code in ``failover_codes`` (503), the request goes to the
next server (a new attempt) and the earlier attempt is *abandoned*: it may still answer, and
late answers must neither reach the caller twice nor leave a ghost call on a server.

The transaction is in one `Phase`:

* ``CALLING``: the current attempt has not answered; its failover deadline is armed (it is the
  only phase with a deadline);
* ``PROCEEDING``: the current attempt answered provisionally, or no server is left to fail
  over to: wait for a final answer (bounded by Timer C, ``invite_timeout``);
* ``CANCELLED``: the caller CANCELled before any final answer: never fail over again;
* ``COMPLETED``: a final answer went to the caller; the attempt that gave it is the *winner*
  and is current from then on. Kept ``linger`` seconds to absorb late answers from abandoned
  attempts (a transaction with a single attempt has none, and leaves the table at once: its
  retransmissions route by affinity to the same server with the same branch);
* ``TERMINATED``: out of the table (expired): nothing reaches it.

Every input is an `Input`: a response by status class (100, 101-199, 2xx, a failover code,
another final) and by the role of the attempt it came from (``CURRENT``: the latest attempt
before the final answer, the winner after it; ``ABANDONED``: any other), a request of the
caller (retransmission, CANCEL, the ACK of a non-2xx), or time (the failover deadline passed,
the current attempt's server was found down, the transaction expired).

`INVITE_TABLE` and `NON_INVITE_TABLE` map every (phase, input) pair to a `Rule`: the actions
(`Do`) in order and the next phase. The non-INVITE table is the INVITE table without the
INVITE-only actions (CANCEL, ACK, ghost BYE, dialog accounting: RFC 3261 §9.1, §17.1.2) and
with a CANCEL that changes nothing. A rule with `Do.FAIL_OVER` names what happens instead when
there is no server left (``otherwise``). Pairs that cannot occur (a failover deadline outside
``CALLING``, anything after ``TERMINATED``) are answered too: dropped, the phase unchanged.

Each attempt has its own `AttemptPhase`, moved by its responses alone (a provisional makes a
calling attempt proceeding, a final completes it); `Do.CANCEL_THIS` and `Do.CANCEL_OTHERS`
CANCEL only attempts that answered provisionally and have no final answer yet (RFC 3261 §9.1),
each once.

The phase, the attempts and the deadline are all replicated (`transactions.PendingSnapshot`): a
standby promoted to active resumes failovers and cancels exactly where the active stopped.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "INVITE_TABLE",
    "NON_INVITE_TABLE",
    "AttemptPhase",
    "Do",
    "Input",
    "Phase",
    "Rule",
    "response_input",
]


class Phase(enum.Enum):
    """The phase of a forwarded transaction (see the module docstring)."""

    CALLING = "calling"
    PROCEEDING = "proceeding"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class AttemptPhase(enum.Enum):
    """The phase of one attempt (one server, one branch)."""

    CALLING = "calling"
    """Sent, nothing heard."""
    PROCEEDING = "proceeding"
    """Answered provisionally: a CANCEL may be sent to it (RFC 3261 §9.1)."""
    CANCELLED = "cancelled"
    """We sent it a CANCEL."""
    COMPLETED = "completed"
    """Answered with a final response."""


class Input(enum.Enum):
    CURRENT_100 = "100 from the current attempt"
    CURRENT_1XX = "101-199 from the current attempt"
    CURRENT_2XX = "2xx from the current attempt"
    CURRENT_FAILOVER = "failover code from the current attempt"
    CURRENT_FINAL = "other final from the current attempt"
    ABANDONED_100 = "100 from an abandoned attempt"
    ABANDONED_1XX = "101-199 from an abandoned attempt"
    ABANDONED_2XX = "2xx from an abandoned attempt"
    ABANDONED_FINAL = "3xx-6xx from an abandoned attempt"
    RETRANSMISSION = "the caller retransmitted the request"
    CANCEL = "the caller's CANCEL"
    ACK = "the caller's ACK of a non-2xx"
    NO_ANSWER = "failover deadline passed"
    SERVER_DOWN = "the current attempt's server went down"
    EXPIRED = "the transaction expired"


class Do(enum.Enum):
    """The actions of the table, performed in order by `forwarder.Forwarder`."""

    WIN = "this attempt is the winner: current from now on"
    FORWARD_UPSTREAM = "send the response to the caller by its next Via"
    FORWARD_TO_CURRENT = "send the caller's request to the current attempt, same branch"
    CANCEL_THIS = "CANCEL this attempt if it is proceeding"
    CANCEL_OTHERS = "CANCEL every other attempt that is proceeding"
    ACK_THIS = "ACK this non-2xx final (RFC 3261 §17.1.1.3)"
    END_GHOST = "ACK and BYE this 2xx: nobody wants the call (§13.2.2.4)"
    FAIL_OVER = "mark the current server failed, send the request to the next server"
    CONFIRM_DIALOG = "count the call as a dialog on this attempt's server"
    END_DIALOG = "stop counting the call (the INVITE failed or was given up)"


@dataclass(frozen=True, slots=True)
class Rule:
    """One table cell: perform ``actions``, go to ``next_phase``. With `Do.FAIL_OVER` among the
    actions, ``otherwise`` is the rule used instead when there is no next server."""

    actions: tuple[Do, ...]
    next_phase: Phase
    otherwise: Rule | None = None


def response_input(status: int, *, current: bool, failover: bool) -> Input:
    """Classify a response: ``current`` when it came from the current attempt, ``failover``
    when its status is one of the configured failover codes."""
    if status < 200:
        if status == 100:
            return Input.CURRENT_100 if current else Input.ABANDONED_100
        return Input.CURRENT_1XX if current else Input.ABANDONED_1XX
    if status < 300:
        return Input.CURRENT_2XX if current else Input.ABANDONED_2XX
    if not current:
        return Input.ABANDONED_FINAL  # a failover code matters only from the current attempt
    return Input.CURRENT_FAILOVER if failover else Input.CURRENT_FINAL


_P = Phase
_I = Input
_D = Do

_DROP: tuple[Do, ...] = ()
_WIN_2XX = (_D.WIN, _D.CONFIRM_DIALOG, _D.CANCEL_OTHERS, _D.FORWARD_UPSTREAM)
# A final non-2xx goes to the caller: an abandoned attempt still ringing is CANCELled too
# (otherwise it rings on until its own timeout, and a late 2xx becomes a ghost call).
_LOSE = (_D.WIN, _D.CANCEL_OTHERS, _D.END_DIALOG, _D.FORWARD_UPSTREAM)


def _waiting(phase: Phase) -> dict[Input, Rule]:
    """CALLING and PROCEEDING: a final answer is still to come from the current attempt."""
    completed = Rule(_LOSE, _P.COMPLETED)
    retry = Rule((_D.FAIL_OVER,), _P.CALLING, otherwise=Rule(_DROP, _P.PROCEEDING))
    return {
        _I.CURRENT_100: Rule((_D.FORWARD_UPSTREAM,), _P.PROCEEDING),
        _I.CURRENT_1XX: Rule((_D.FORWARD_UPSTREAM,), _P.PROCEEDING),
        _I.CURRENT_2XX: Rule(_WIN_2XX, _P.COMPLETED),
        # No server left: the caller gets the 503 and ACKs it itself.
        _I.CURRENT_FAILOVER: Rule((_D.ACK_THIS, _D.FAIL_OVER), _P.CALLING, otherwise=completed),
        _I.CURRENT_FINAL: completed,
        _I.ABANDONED_100: Rule((_D.FORWARD_UPSTREAM,), phase),
        _I.ABANDONED_1XX: Rule((_D.FORWARD_UPSTREAM,), phase),
        _I.ABANDONED_2XX: Rule(_WIN_2XX, _P.COMPLETED),  # the first 2xx wins, from any attempt
        _I.ABANDONED_FINAL: Rule((_D.ACK_THIS,), phase),
        _I.RETRANSMISSION: Rule((_D.FORWARD_TO_CURRENT,), phase),
        _I.CANCEL: Rule((_D.CANCEL_OTHERS, _D.FORWARD_TO_CURRENT), _P.CANCELLED),
        _I.ACK: Rule((_D.FORWARD_TO_CURRENT,), phase),
        # The deadline exists only in CALLING; PROCEEDING has none to pass.
        _I.NO_ANSWER: retry if phase is _P.CALLING else Rule(_DROP, phase),
        # A proceeding INVITE on a dead server would hang until the caller's Timer B.
        _I.SERVER_DOWN: retry,
        _I.EXPIRED: Rule((_D.END_DIALOG,), _P.TERMINATED),
    }


def _cancelled() -> dict[Input, Rule]:
    same = _P.CANCELLED
    return {
        _I.CURRENT_100: Rule((_D.FORWARD_UPSTREAM,), same),
        _I.CURRENT_1XX: Rule((_D.FORWARD_UPSTREAM,), same),
        _I.CURRENT_2XX: Rule(_WIN_2XX, _P.COMPLETED),  # raced the CANCEL: the caller BYEs
        _I.CURRENT_FAILOVER: Rule(_LOSE, _P.COMPLETED),  # never fail over a cancelled call
        _I.CURRENT_FINAL: Rule(_LOSE, _P.COMPLETED),  # the 487
        _I.ABANDONED_100: Rule(_DROP, same),
        _I.ABANDONED_1XX: Rule((_D.CANCEL_THIS,), same),  # it rings: the caller gave up
        _I.ABANDONED_2XX: Rule(_WIN_2XX, _P.COMPLETED),
        _I.ABANDONED_FINAL: Rule((_D.ACK_THIS,), same),
        _I.RETRANSMISSION: Rule((_D.FORWARD_TO_CURRENT,), same),
        _I.CANCEL: Rule((_D.FORWARD_TO_CURRENT,), same),  # a retransmitted CANCEL
        _I.ACK: Rule((_D.FORWARD_TO_CURRENT,), same),
        _I.NO_ANSWER: Rule(_DROP, same),
        _I.SERVER_DOWN: Rule(_DROP, same),
        _I.EXPIRED: Rule((_D.END_DIALOG,), _P.TERMINATED),
    }


def _completed() -> dict[Input, Rule]:
    same = _P.COMPLETED
    return {
        _I.CURRENT_100: Rule(_DROP, same),
        _I.CURRENT_1XX: Rule(_DROP, same),
        _I.CURRENT_2XX: Rule((_D.FORWARD_UPSTREAM,), same),  # a retransmitted 2xx
        _I.CURRENT_FAILOVER: Rule((_D.FORWARD_UPSTREAM,), same),  # retransmitted: caller ACKs
        _I.CURRENT_FINAL: Rule((_D.FORWARD_UPSTREAM,), same),
        _I.ABANDONED_100: Rule(_DROP, same),
        _I.ABANDONED_1XX: Rule((_D.CANCEL_THIS,), same),
        _I.ABANDONED_2XX: Rule((_D.END_GHOST,), same),
        _I.ABANDONED_FINAL: Rule((_D.ACK_THIS,), same),
        _I.RETRANSMISSION: Rule((_D.FORWARD_TO_CURRENT,), same),
        _I.CANCEL: Rule((_D.FORWARD_TO_CURRENT,), same),  # too late: the winner answers it
        _I.ACK: Rule((_D.FORWARD_TO_CURRENT,), same),
        _I.NO_ANSWER: Rule(_DROP, same),
        _I.SERVER_DOWN: Rule(_DROP, same),
        _I.EXPIRED: Rule(_DROP, _P.TERMINATED),
    }


def _build_invite() -> dict[tuple[Phase, Input], Rule]:
    rows = {
        _P.CALLING: _waiting(_P.CALLING),
        _P.PROCEEDING: _waiting(_P.PROCEEDING),
        _P.CANCELLED: _cancelled(),
        _P.COMPLETED: _completed(),
        _P.TERMINATED: {i: Rule(_DROP, _P.TERMINATED) for i in Input},
    }
    return {(phase, i): rule for phase, row in rows.items() for i, rule in row.items()}


_INVITE_ONLY = frozenset(
    {_D.CANCEL_THIS, _D.CANCEL_OTHERS, _D.ACK_THIS, _D.END_GHOST, _D.CONFIRM_DIALOG,
     _D.END_DIALOG}
)


def _strip(rule: Rule) -> Rule:
    actions = tuple(a for a in rule.actions if a not in _INVITE_ONLY)
    otherwise = None if rule.otherwise is None else _strip(rule.otherwise)
    return Rule(actions, rule.next_phase, otherwise)


def _build_non_invite(
    invite: Mapping[tuple[Phase, Input], Rule],
) -> dict[tuple[Phase, Input], Rule]:
    t = {pair: _strip(rule) for pair, rule in invite.items()}
    # RFC 3261 §9.1: a non-INVITE request is not cancelled; its CANCEL reaches the server,
    # which answers it, and changes nothing here.
    for phase in Phase:
        if phase is not _P.TERMINATED:
            t[(phase, _I.CANCEL)] = Rule((_D.FORWARD_TO_CURRENT,), phase)
    return t


INVITE_TABLE: Mapping[tuple[Phase, Input], Rule] = _build_invite()
"""(phase, input) -> rule for an INVITE; complete over all pairs."""
NON_INVITE_TABLE: Mapping[tuple[Phase, Input], Rule] = _build_non_invite(INVITE_TABLE)
"""(phase, input) -> rule for any other initial request; complete over all pairs."""


def _check(table: Mapping[tuple[Phase, Input], Rule]) -> None:
    # Checked once at import: complete, and otherwise exactly on the failover rules.
    missing = {(p, i) for p in Phase for i in Input} - set(table)
    if missing:
        raise AssertionError(f"forwarding table misses {sorted(str(m) for m in missing)}")
    for pair, rule in table.items():
        if (Do.FAIL_OVER in rule.actions) != (rule.otherwise is not None):
            raise AssertionError(f"forwarding rule {pair}: otherwise goes with FAIL_OVER")


_check(INVITE_TABLE)
_check(NON_INVITE_TABLE)
