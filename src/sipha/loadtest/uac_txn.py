"""One non-INVITE client transaction of a scenario: REGISTER (with digest) or OPTIONS.

Theory of operation
-------------------
RFC 3261 §17.1.2.2 as a table, `TXN_TABLE`: (state, input) -> (actions, next state).  The
transaction is TRYING until a provisional makes it PROCEEDING (it then retransmits every T2,
Timer E's cap), and DONE once its outcome is known.  A timer that fires before Timer F is
``RETRANSMIT_DUE``, at Timer F ``DEADLINE``.  A challenge (401/407), the first one and with a
password, is answered on the same Call-ID with CSeq + 1 and credentials (a new transaction:
TRYING again); a challenge that cannot be answered finishes it as failed with its status.
Responses with another CSeq number are ``OTHER_RESPONSE`` and dropped.  Every pair has a rule
(checked at import, walked by ``tests/loadtest/test_call_tables_every_pair.py``).

The outcome goes to ``on_done(txn, ok, status, now)`` (status 0 for a Timer F timeout or an
abort): the UAC engine counts it as a scenario "call", a UAS's registration uses it (and the
2xx kept in ``final``) to schedule its refresh.  The transaction touches nothing of its
engine but the :class:`~sipha.loadtest.core.Host` protocol.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sipha.loadtest.digest import authorization_line
from sipha.loadtest.wire import Scan
from sipha.sip.fastenum import IdentityEnum

if TYPE_CHECKING:
    from sipha.loadtest.core import Host
    from sipha.loadtest.messages import MessageBuilder

__all__ = ["TXN_TABLE", "RequestTxn", "TxnAction", "TxnDone", "TxnInput", "TxnRule", "TxnState"]

# (txn, ok, status or 0 for a Timer F timeout, now)
TxnDone = Callable[["RequestTxn", bool, int, float], None]


class TxnState(IdentityEnum):
    TRYING = "trying"
    PROCEEDING = "proceeding"
    DONE = "done"


class TxnInput(IdentityEnum):
    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    CHALLENGE = "401/407, credentials not yet sent"
    REJECTED = "another final >= 300"
    OTHER_RESPONSE = "a response with another CSeq number"
    RETRANSMIT_DUE = "the timer fired before Timer F"
    DEADLINE = "Timer F"
    ABORT = "the run is over"


class TxnAction(IdentityEnum):
    RETRANSMIT = "send again; Timer E doubles up to T2"
    RETRANSMIT_AT_T2 = "send again; Timer E is T2 once proceeding (RFC 3261 §17.1.2.2)"
    AUTHENTICATE = "same Call-ID, CSeq + 1, credentials: a new transaction"
    SUCCEED = "keep the 2xx; report ok"
    FAIL = "report failed with the response's status (0 without one)"


@dataclass(frozen=True, slots=True)
class TxnRule:
    """Perform ``actions``, go to ``next_state``; ``otherwise`` replaces a rule whose
    challenge cannot be answered."""

    actions: tuple[TxnAction, ...]
    next_state: TxnState
    otherwise: TxnRule | None = None


def _build() -> dict[tuple[TxnState, TxnInput], TxnRule]:
    S, In, A = TxnState, TxnInput, TxnAction
    t = {(s, i): TxnRule((), s) for s in TxnState for i in TxnInput}
    failed = TxnRule((A.FAIL,), S.DONE)
    for s in (S.TRYING, S.PROCEEDING):
        t[s, In.PROVISIONAL] = TxnRule((), S.PROCEEDING)
        t[s, In.SUCCESS] = TxnRule((A.SUCCEED,), S.DONE)
        t[s, In.CHALLENGE] = TxnRule((A.AUTHENTICATE,), S.TRYING, otherwise=failed)
        t[s, In.REJECTED] = failed
        t[s, In.DEADLINE] = failed
        t[s, In.ABORT] = failed
    t[S.TRYING, In.RETRANSMIT_DUE] = TxnRule((A.RETRANSMIT,), S.TRYING)
    t[S.PROCEEDING, In.RETRANSMIT_DUE] = TxnRule((A.RETRANSMIT_AT_T2,), S.PROCEEDING)
    return t


TXN_TABLE: Mapping[tuple[TxnState, TxnInput], TxnRule] = _build()
"""(state, input) -> rule; complete over all pairs."""

if {(s, i) for s in TxnState for i in TxnInput} - set(TXN_TABLE):  # pragma: no cover
    raise AssertionError("transaction table has a hole")


class RequestTxn:
    """A REGISTER or OPTIONS, retried once with credentials when challenged."""

    __slots__ = (
        "auth_tried",
        "builder",
        "call_id",
        "cseq",
        "deadline",
        "expires",
        "final",
        "from_hdr",
        "gen",
        "host",
        "interval",
        "key",
        "method",
        "on_done",
        "password",
        "request",
        "rng",
        "ruri",
        "started",
        "state",
        "tag",
        "to_hdr",
        "user",
    )

    def __init__(
        self,
        host: Host,
        builder: MessageBuilder,
        *,
        method: Literal["REGISTER", "OPTIONS"],
        user: str,
        domain: str,
        call_id: str,
        cseq: int,
        tag: str,
        password: str | None,
        expires: int,
        on_done: TxnDone,
        rng: random.Random,
    ) -> None:
        self.host = host
        self.builder = builder
        self.method = method
        self.user = user
        self.gen = 0
        self.call_id = call_id
        self.key = call_id.encode()
        self.cseq = cseq
        self.tag = tag
        self.password = password
        self.expires = expires
        self.on_done = on_done
        self.rng = rng
        self.from_hdr = f"<sip:{user}@{domain}>;tag={tag}"
        self.to_hdr = f"<sip:{user}@{domain}>"
        # RFC 3261 §10.2: a REGISTER's Request-URI names the domain, no user part.
        self.ruri = f"sip:{domain}" if method == "REGISTER" else f"sip:{user}@{builder.target}"
        self.auth_tried = False
        self.started = 0.0
        self.deadline = 0.0
        self.interval = 0.0
        self.request = b""
        self.final = b""  # the 2xx as received: a registration reads its granted expiry
        self.state = TxnState.TRYING

    @property
    def done(self) -> bool:
        return self.state is TxnState.DONE

    def start(self, now: float, auth_line: str = "") -> None:
        """Send the request (again, with ``auth_line``, after a challenge)."""
        e = self.host
        b = self.builder
        extra = auth_line
        if self.method == "REGISTER":
            extra = f"Contact: {b.contact(self.user)}\r\nExpires: {self.expires}\r\n" + extra
        else:
            extra = "Accept: application/sdp\r\n" + extra
        if not auth_line:
            self.started = now
        self.request = b.request(
            self.method,
            self.ruri,
            branch=f"z9hG4bK{self.tag}c{self.cseq}",
            from_=self.from_hdr,
            to=self.to_hdr,
            call_id=self.call_id,
            cseq=self.cseq,
            extra=extra,
        )
        e.out.append(self.request)
        e.listen(self.key, self)
        timers = e.timers
        self.interval = timers.t1
        self.deadline = now + 64 * timers.t1  # Timer F
        e.arm(self, self.deadline if timers.reliable else now + timers.t1)

    # -- inputs ---------------------------------------------------------------------------------

    def on_response(self, msg: Scan, data: bytes, now: float) -> None:
        status = msg.status
        if msg.cseq_num != self.cseq:
            event = TxnInput.OTHER_RESPONSE
        elif status < 200:
            event = TxnInput.PROVISIONAL
        elif status < 300:
            event = TxnInput.SUCCESS
        elif (status == 401 or status == 407) and not self.auth_tried:
            event = TxnInput.CHALLENGE
        else:
            event = TxnInput.REJECTED
        self.handle(event, now, msg, data)

    def on_timer(self, now: float) -> None:
        self.handle(
            TxnInput.RETRANSMIT_DUE if now < self.deadline else TxnInput.DEADLINE, now, None, b""
        )

    def abort(self, now: float) -> None:
        """End the transaction unanswered now (the run is over); reported as not ok."""
        self.handle(TxnInput.ABORT, now, None, b"")

    # -- the machine ----------------------------------------------------------------------------

    def handle(self, event: TxnInput, now: float, msg: Scan | None, data: bytes) -> None:
        """Perform the table's rule for ``event`` in the current state."""
        rule = TXN_TABLE[self.state, event]
        line: str | None = None
        if rule.otherwise is not None:
            assert msg is not None  # only a challenge has an otherwise
            line = self._credentials(msg)
            if line is None:
                rule = rule.otherwise
        self.state = rule.next_state
        e = self.host
        for action in rule.actions:
            if action is TxnAction.RETRANSMIT or action is TxnAction.RETRANSMIT_AT_T2:
                t2 = e.timers.t2
                self.interval = (
                    t2 if action is TxnAction.RETRANSMIT_AT_T2 else min(self.interval * 2, t2)
                )
                e.out.append(self.request)
                e.retransmitted()
                e.arm(self, min(now + self.interval, self.deadline))
            elif action is TxnAction.AUTHENTICATE:
                assert line is not None
                self.auth_tried = True
                self.cseq += 1
                self.start(now, line)
            elif action is TxnAction.SUCCEED:
                self.final = data
                self._finish(True, msg.status if msg is not None else 200, now)
            else:  # FAIL
                self._finish(False, 0 if msg is None else msg.status, now)

    def _credentials(self, msg: Scan) -> str | None:
        if self.password is None:
            return None
        return authorization_line(
            msg,
            method=self.method,
            uri=self.ruri,
            username=self.user,
            password=self.password,
            rng=self.rng,
        )

    def _finish(self, ok: bool, status: int, now: float) -> None:
        e = self.host
        e.disarm(self)
        e.forget(self.key, self)
        self.on_done(self, ok, status, now)
