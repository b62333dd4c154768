"""The UAS engine: answers calls with a configured mix, and (optionally) registers its users.

Theory of operation
-------------------
Each INVITE draws its fate from the answer mix (seeded RNG): *answer* (180, then 200 after the
ring time), *busy* (180, then the busy code, 486 by default, after the ring time) or
*no answer* (180, then ringing until CANCEL, or 480 after ``ring_timeout``).  Per call::

    state       input                       action                              next
    ---------   -------------------------   ---------------------------------   ---------
    RINGING     timer (ring time over)      200 + SDP, or the busy code         ANSWERED/REJECTED
    RINGING     CANCEL                      200 to CANCEL, 487 to INVITE        REJECTED
    RINGING     INVITE (retransmission)     repeat the last response            RINGING
    ANSWERED    timer, before 64*T1         retransmit 2xx, T = min(2T, T2)     ANSWERED
                                            (RFC 3261 §13.3.1.4, UDP only)
    ANSWERED    timer, 64*T1 reached        failed(timeout): no ACK came        (gone)
    ANSWERED    ACK                         -                                   CONFIRMED
    REJECTED    ACK / timer (Timer H)       -                                   (gone)
    REJECTED    timer, before Timer H       retransmit final (Timer G)          REJECTED
    CONFIRMED/  BYE                         200; success                        (gone)
     ANSWERED
    any         INVITE (retransmission)     repeat the last response            same

Anything else is ignored.  A BYE for a call that just ended (its 200 was lost) is answered 200
from a short memory of ended Call-IDs; a BYE or CANCEL for an unknown call gets 481.
OPTIONS gets 200; other methods 501.

With ``count_calls`` the engine counts incoming calls in its statistics (the ``uas`` role);
in ``register+call`` the UAC side counts the calls and the UAS counts only its REGISTER
transactions.  Registrations refresh at 90 % of the expiry the registrar granted (RFC 3261
§10.2.4: our Contact's ``expires`` in the 200, else its Expires header, else what we asked; a
registrar may shorten it, §10.3 step 7) and retry 5 s after a failure.
"""

from __future__ import annotations

import enum
import random
from typing import Any

from sipha.loadtest.core import EngineBase
from sipha.loadtest.messages import MessageBuilder, sdp_offer
from sipha.loadtest.options import ScenarioOptions
from sipha.loadtest.protocol import UserRange
from sipha.loadtest.registration import granted_expiry
from sipha.loadtest.stats import FailureReason
from sipha.loadtest.uac_txn import RequestTxn
from sipha.loadtest.wire import Scan

__all__ = ["UasCallState", "UasEngine"]


class UasCallState(enum.Enum):
    RINGING = "ringing"
    ANSWERED = "answered"
    REJECTED = "rejected"
    CONFIRMED = "confirmed"
    ENDED = "ended"


RINGING = UasCallState.RINGING
ANSWERED = UasCallState.ANSWERED
REJECTED = UasCallState.REJECTED
CONFIRMED = UasCallState.CONFIRMED
ENDED = UasCallState.ENDED

_FATE_ANSWER, _FATE_BUSY, _FATE_NO_ANSWER = 0, 1, 2
_REASONS = {486: "Busy Here", 480: "Temporarily Unavailable", 487: "Request Terminated",
            600: "Busy Everywhere", 603: "Decline", 503: "Service Unavailable"}


class UasCall:
    __slots__ = (
        "answered_at",
        "deadline",
        "e",
        "fate",
        "gen",
        "interval",
        "invite",
        "key",
        "last",
        "peer",
        "started",
        "state",
        "to_tag",
    )

    def __init__(self, e: UasEngine, invite: Scan, peer: Any, to_tag: bytes, now: float) -> None:
        self.e = e
        self.gen = 0
        self.key = invite.call_id
        self.invite = invite
        self.peer = peer
        self.to_tag = to_tag
        self.started = now
        self.answered_at = now
        self.state = RINGING
        self.last = b""
        self.interval = e.t1
        self.deadline = 0.0
        self.fate = _FATE_ANSWER

    def _send(self, data: bytes) -> None:
        self.last = data
        self.e.replies.append((data, self.peer))

    def final(self, now: float, status: int) -> None:
        e = self.e
        if status == 200:
            self._send(
                e.builder.response(
                    self.invite, 200, "OK", to_tag=self.to_tag, extra=e.contact_line, body=e.sdp
                )
            )
            self.state = ANSWERED
            self.answered_at = now
        else:
            self._send(
                e.builder.response(
                    self.invite, status, _REASONS.get(status, "Rejected"), to_tag=self.to_tag
                )
            )
            self.state = REJECTED
            if e.count_calls:
                e.stats.record_failure(status)
            e.active -= 1
        self.interval = e.t1
        self.deadline = now + 64 * e.t1  # Timer H, and the 2xx give-up time (§13.3.1.4)
        if e.reliable:
            e.schedule(self, self.deadline)
        else:
            e.schedule(self, now + e.t1)

    def on_timer(self, now: float) -> None:
        e = self.e
        state = self.state
        if state is RINGING:
            if self.fate == _FATE_ANSWER:
                self.final(now, 200)
            elif self.fate == _FATE_BUSY:
                self.final(now, e.options.mix.busy_code)
            else:
                self.final(now, 480)
        elif state is ANSWERED or state is REJECTED:
            if now >= self.deadline:
                if state is ANSWERED:
                    if e.count_calls:
                        e.stats.record_failure(FailureReason.TIMEOUT_B)
                    e.active -= 1
                self.end(now)
                return
            e.replies.append((self.last, self.peer))
            e.stats.retransmissions += 1
            self.interval = min(self.interval * 2, e.t2)
            e.schedule(self, min(now + self.interval, self.deadline))

    def end(self, now: float) -> None:
        e = self.e
        self.state = ENDED
        e.cancel(self)
        e.calls.pop(self.key, None)
        e.ended[self.key] = now + 32 * e.t1


class UasEngine(EngineBase):
    """Answers INVITE / BYE / CANCEL / OPTIONS; registers ``users`` at the target if given."""

    def __init__(
        self,
        options: ScenarioOptions,
        *,
        transport: str,
        local_host: str,
        local_port: int,
        t0: float,
        rng: random.Random,
        count_calls: bool = True,
        users: UserRange | None = None,
        target: str = "",
        domain: str = "",
    ) -> None:
        super().__init__(t0=t0, reliable=transport != "udp", t1=options.t1, t2=options.t2)
        self.options = options
        self.rng = rng
        self.count_calls = count_calls
        self.domain = domain or target.rsplit(":", 1)[0]
        self.builder = MessageBuilder(
            local_host=local_host,
            local_port=local_port,
            transport=transport,
            target=target,
            domain=self.domain,
        )
        self.contact_line = f"Contact: {self.builder.contact('sipha-uas')}".encode()
        self.sdp = sdp_offer(local_host, 2) if options.sdp else b""
        self.calls: dict[bytes, UasCall] = {}
        self.ended: dict[bytes, float] = {}
        self.tag_prefix = f"{rng.getrandbits(32):08x}"
        self._n = 0
        mix = options.mix
        total = mix.answer + mix.busy + mix.no_answer
        self._p_answer = mix.answer / total
        self._p_busy = (mix.answer + mix.busy) / total
        self.users = users
        self.registered: set[str] = set()
        # user -> when (engine time) the registrar's binding lapses unless refreshed.
        self.binding_expiry: dict[str, float] = {}
        self.registration_failures = 0
        self._reg_seq: dict[str, int] = {}
        self.regs_pending = 0

    # -- registrations --------------------------------------------------------------------------

    def register_all(self, now: float) -> None:
        """REGISTER every user (RFC 3261 §10.2); refreshes follow by themselves."""
        if self.users is None:
            return
        for i in range(self.users.count):
            self._register(f"{self.users.prefix}{self.users.first + i}", now)

    @property
    def registrations_settled(self) -> bool:
        """Every user has had a first answer (or timeout) to its REGISTER."""
        return self.regs_pending == 0

    def _register(self, user: str, now: float, *, refresh: bool = False) -> None:
        assert self.users is not None
        seq = self._reg_seq.get(user, 0) + 1
        self._reg_seq[user] = seq
        if not refresh:
            self.regs_pending += 1
        txn = RequestTxn(
            self,
            self.builder,
            method="REGISTER",
            user=user,
            domain=self.users.domain or self.domain,
            call_id=f"reg-{user}-{self.tag_prefix}@{self.builder.local_host}",
            cseq=seq * 2,
            tag=f"{self.tag_prefix}r{user}{seq}",
            password=self.users.password,
            expires=self.options.register_expires,
            on_done=self._registered if not refresh else self._refreshed,
            rng=self.rng,
        )
        txn.start(now)

    def _registered(self, txn: RequestTxn, ok: bool, status: int, now: float) -> None:
        self.regs_pending -= 1
        self._refreshed(txn, ok, status, now)

    def _refreshed(self, txn: RequestTxn, ok: bool, status: int, now: float) -> None:
        if ok:
            self.stats.transactions_ok += 1
            self.registered.add(txn.user)
            granted = granted_expiry(
                txn.final, contact=self.builder.contact(txn.user), requested=txn.expires
            )
            self.binding_expiry[txn.user] = now + granted
            delay = 0.9 * granted
        else:
            self.stats.transactions_failed += 1
            self.registration_failures += 1
            self.registered.discard(txn.user)
            delay = 5.0
        self.schedule(_Refresh(self, txn.user), now + delay)

    # -- requests -------------------------------------------------------------------------------

    def on_request(self, msg: Scan, data: bytes, peer: Any, now: float) -> None:
        method = msg.method
        key = msg.call_id
        if method == b"INVITE":
            call = self.calls.get(key)
            if call is not None:
                if call.last:
                    self.replies.append((call.last, peer))
                    self.stats.retransmissions += 1
                return
            if not key or msg.cseq_num < 0:
                self.stray += 1
                return
            self._new_call(msg, peer, now)
        elif method == b"ACK":
            call = self.calls.get(key)
            if call is None:
                return
            if call.state is ANSWERED:
                call.state = CONFIRMED
                self.cancel(call)
            elif call.state is REJECTED:
                call.end(now)
        elif method == b"BYE":
            self._bye(msg, peer, now)
        elif method == b"CANCEL":
            self._cancel(msg, peer, now)
        elif method == b"OPTIONS":
            self.replies.append(
                (self.builder.response(msg, 200, "OK", extra=b"Allow: INVITE, ACK, BYE, CANCEL, "
                                       b"OPTIONS\r\nAccept: application/sdp"), peer)
            )
        else:
            self.replies.append((self.builder.response(msg, 501, "Not Implemented"), peer))

    def _new_call(self, msg: Scan, peer: Any, now: float) -> None:
        self._n += 1
        call = UasCall(self, msg, peer, f"{self.tag_prefix}{self._n}".encode(), now)
        self.calls[call.key] = call
        self.active += 1
        if self.count_calls:
            self.stats.calls_attempted += 1
        draw = self.rng.random()
        fate = _FATE_ANSWER if draw < self._p_answer else (
            _FATE_BUSY if draw < self._p_busy else _FATE_NO_ANSWER)
        call.fate = fate
        call._send(self.builder.response(msg, 180, "Ringing", to_tag=call.to_tag))
        ring = self.options.ring_time
        if fate == _FATE_NO_ANSWER:
            self.schedule(call, now + self.options.ring_timeout)
        elif ring <= 0:
            call.final(now, 200 if fate == _FATE_ANSWER else self.options.mix.busy_code)
        else:
            self.schedule(call, now + ring)

    def _bye(self, msg: Scan, peer: Any, now: float) -> None:
        key = msg.call_id
        call = self.calls.get(key)
        b = self.builder
        if call is not None and (call.state is CONFIRMED or call.state is ANSWERED):
            self.replies.append((b.response(msg, 200, "OK"), peer))
            if self.count_calls:
                self.stats.record_success(call.answered_at - call.started)
            self.active -= 1
            call.end(now)
        elif key in self.ended:
            self.replies.append((b.response(msg, 200, "OK"), peer))
        else:
            self.replies.append((b.response(msg, 481, "Call/Transaction Does Not Exist"), peer))

    def _cancel(self, msg: Scan, peer: Any, now: float) -> None:
        call = self.calls.get(msg.call_id)
        b = self.builder
        if call is None:
            self.replies.append((b.response(msg, 481, "Call/Transaction Does Not Exist"), peer))
            return
        # RFC 3261 §9.2: 200 to the CANCEL; the INVITE, if still ringing, ends with 487.
        self.replies.append((b.response(msg, 200, "OK", to_tag=call.to_tag), peer))
        if call.state is RINGING:
            call.final(now, 487)

    def gauge(self) -> int:
        # In register+call the UAC side reports the concurrent calls; do not count them twice.
        return self.active if self.count_calls else 0

    def _close_second(self) -> None:
        super()._close_second()
        # Forget ended Call-IDs whose BYE retransmissions cannot come any more.  Insertion
        # order is expiry order (one fixed retention), so stop at the first one still fresh.
        ended = self.ended
        if ended:
            now = self.next_boundary - 1.0
            stale = []
            for k, t in ended.items():
                if t >= now:
                    break
                stale.append(k)
            for k in stale:
                del ended[k]

    @property
    def idle(self) -> bool:
        return not self.calls


class _Refresh:
    """A registration refresh timer (RFC 3261 §10.2.1: refresh before expiry)."""

    __slots__ = ("e", "gen", "user")

    def __init__(self, e: UasEngine, user: str) -> None:
        self.e = e
        self.user = user
        self.gen = 0

    def on_timer(self, now: float) -> None:
        self.e._register(self.user, now, refresh=True)
