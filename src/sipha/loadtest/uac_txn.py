"""One non-INVITE client transaction of a scenario: REGISTER (with digest) or OPTIONS.

Theory of operation
-------------------
::

    state     input                          action                               next
    -------   ----------------------------   ----------------------------------   -------
    TRYING    1xx                            retransmit at T2 from now on         TRYING
    TRYING    2xx                            done(ok)                             (gone)
    TRYING    401/407, first challenge       same Call-ID, CSeq+1, credentials    TRYING
    TRYING    other >= 300                   done(failed, status)                 (gone)
    TRYING    timer, before Timer F          retransmit (UDP), E = min(2E, T2)    TRYING
    TRYING    timer, Timer F reached         done(failed, timeout-f)              (gone)

(RFC 3261 §17.1.2.2.)  Responses with another CSeq number are ignored.  The outcome goes to
``on_done(txn, ok, status, now)``: the UAC engine counts it as a scenario "call", a UAS's
registration uses it (and the 2xx kept in ``final``) to schedule its refresh.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from sipha.loadtest.digest import authorization_line
from sipha.loadtest.wire import Scan

if TYPE_CHECKING:
    from sipha.loadtest.core import EngineBase
    from sipha.loadtest.messages import MessageBuilder

__all__ = ["RequestTxn", "TxnDone"]

# (txn, ok, status or 0 for a Timer F timeout, now)
TxnDone = Callable[["RequestTxn", bool, int, float], None]


class RequestTxn:
    """A REGISTER or OPTIONS, retried once with credentials when challenged."""

    __slots__ = (
        "auth_tried",
        "builder",
        "call_id",
        "cseq",
        "deadline",
        "done",
        "e",
        "expires",
        "final",
        "from_hdr",
        "gen",
        "interval",
        "key",
        "method",
        "on_done",
        "password",
        "request",
        "rng",
        "ruri",
        "started",
        "tag",
        "to_hdr",
        "user",
    )

    def __init__(
        self,
        engine: EngineBase,
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
        self.e = engine
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
        self.done = False

    def start(self, now: float, auth_line: str = "") -> None:
        e = self.e
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
        e.dialogs[self.key] = self
        self.interval = e.t1
        self.deadline = now + 64 * e.t1  # Timer F
        e.schedule(self, self.deadline if e.reliable else now + e.t1)

    def on_response(self, msg: Scan, data: bytes, now: float) -> None:
        if self.done or msg.cseq_num != self.cseq:
            return
        status = msg.status
        if status < 200:
            self.interval = self.e.t2  # RFC 3261 §17.1.2.2: Proceeding retransmits at T2
            return
        if status < 300:
            self.final = data
            self._finish(True, status, now)
            return
        if status in (401, 407) and not self.auth_tried and self.password is not None:
            line = authorization_line(
                msg,
                method=self.method,
                uri=self.ruri,
                username=self.user,
                password=self.password,
                rng=self.rng,
            )
            if line is not None:
                self.auth_tried = True
                self.cseq += 1
                self.start(now, line)
                return
        self._finish(False, status, now)

    def on_timer(self, now: float) -> None:
        if now >= self.deadline:
            self._finish(False, 0, now)
            return
        e = self.e
        e.out.append(self.request)
        e.stats.retransmissions += 1
        self.interval = min(self.interval * 2, e.t2)
        e.schedule(self, min(now + self.interval, self.deadline))

    def abort(self, now: float) -> None:
        """End the transaction unanswered now (the run is over); reported as not ok."""
        if not self.done:
            self._finish(False, 0, now)

    def _finish(self, ok: bool, status: int, now: float) -> None:
        self.done = True
        e = self.e
        e.cancel(self)
        if e.dialogs.get(self.key) is self:
            del e.dialogs[self.key]
        self.on_done(self, ok, status, now)
