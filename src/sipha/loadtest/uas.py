"""The UAS engine: answers calls with a configured mix, and (optionally) registers its users.

Theory of operation
-------------------
Each INVITE draws its fate from the answer mix (seeded RNG): *answer* (180, then 200 after the
ring time), *busy* (180, then the busy code, 486 by default, after the ring time) or
*no answer* (180, then ringing until CANCEL, or 480 after ``ring_timeout``).  From there the
call follows the table of :mod:`sipha.loadtest.uas_call`: the engine only finds the call by
Call-ID and hands it the request.  A BYE for a call that just ended (its 200 was lost) is
answered 200 from a short memory of ended Call-IDs; a BYE or CANCEL for an unknown call gets
481.  OPTIONS gets 200; other methods 501.

With ``count_calls`` the engine counts incoming calls in its statistics (the ``uas`` role);
in ``register+call`` the UAC side counts the calls and the UAS counts only its REGISTER
transactions.  Registrations refresh at 90 % of the expiry the registrar granted (RFC 3261
§10.2.4: our Contact's ``expires`` in the 200, else its Expires header, else what we asked; a
registrar may shorten it, §10.3 step 7) and retry 5 s after a failure.
"""

from __future__ import annotations

import random
from typing import Any

from sipha.loadtest.core import EngineBase
from sipha.loadtest.messages import MessageBuilder, sdp_offer
from sipha.loadtest.options import ScenarioOptions
from sipha.loadtest.protocol import UserRange
from sipha.loadtest.registration import granted_expiry
from sipha.loadtest.stats import FailureReason
from sipha.loadtest.uac_txn import RequestTxn
from sipha.loadtest.uas_call import UasCall, UasInput, UasSettings
from sipha.loadtest.wire import Scan

__all__ = ["UasEngine"]


_CALL_INPUTS = {
    b"INVITE": UasInput.INVITE,
    b"ACK": UasInput.ACK,
    b"BYE": UasInput.BYE,
    b"CANCEL": UasInput.CANCEL,
}


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
        self.call_settings = UasSettings(
            builder=self.builder,
            timers=self.timers,
            contact_line=self.contact_line,
            sdp=self.sdp,
            busy_code=options.mix.busy_code,
        )

    # -- what a call reports (uas_call.UasHost) -------------------------------------------------

    def call_succeeded(self, setup_200: float) -> None:
        self.active -= 1
        if self.count_calls:
            self.stats.record_success(setup_200)

    def call_failed(self, reason: FailureReason | int) -> None:
        self.active -= 1
        if self.count_calls:
            self.stats.record_failure(reason)

    def call_over(self, key: bytes, now: float) -> None:
        self.calls.pop(key, None)
        self.ended[key] = now + 32 * self.t1

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
        self.arm(_Refresh(self, txn.user), now + delay)

    # -- requests -------------------------------------------------------------------------------

    def on_request(self, msg: Scan, data: bytes, peer: Any, now: float) -> None:
        method = msg.method
        key = msg.call_id
        event = _CALL_INPUTS.get(method)
        if event is not None:
            call = self.calls.get(key)
            if call is not None:
                call.handle(event, now, msg, peer)
            elif event is UasInput.INVITE:
                if not key or msg.cseq_num < 0:
                    self.stray += 1
                    return
                self._new_call(msg, peer, now)
            elif event is UasInput.BYE and key in self.ended:
                self.replies.append((self.builder.response(msg, 200, "OK"), peer))
            elif event is not UasInput.ACK:
                self.replies.append(
                    (self.builder.response(msg, 481, "Call/Transaction Does Not Exist"), peer)
                )
        elif method == b"OPTIONS":
            self.replies.append(
                (self.builder.response(msg, 200, "OK", extra=b"Allow: INVITE, ACK, BYE, CANCEL, "
                                       b"OPTIONS\r\nAccept: application/sdp"), peer)
            )
        else:
            self.replies.append((self.builder.response(msg, 501, "Not Implemented"), peer))

    def _new_call(self, msg: Scan, peer: Any, now: float) -> None:
        self._n += 1
        call = UasCall(self, self.call_settings, msg, peer, f"{self.tag_prefix}{self._n}".encode(),
                       now)
        self.calls[call.key] = call
        self.active += 1
        if self.count_calls:
            self.stats.calls_attempted += 1
        draw = self.rng.random()
        options = self.options
        if draw < self._p_answer:
            fate, ring = UasInput.ANSWER_DUE, options.ring_time
        elif draw < self._p_busy:
            fate, ring = UasInput.BUSY_DUE, options.ring_time
        else:
            fate, ring = UasInput.NO_ANSWER_DUE, options.ring_timeout
        call.ring(fate, now + ring, now)

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
