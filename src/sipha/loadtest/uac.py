"""The UAC engine: starts scenario instances at the planned rate and classifies each outcome.

Theory of operation
-------------------
On every ``advance(now)`` the engine asks its arrival process (:mod:`sipha.loadtest.rate`) how
many instances are due, trims that by the bounds (total calls, concurrent calls; calls over the
concurrency cap are skipped and counted in ``throttled``, not queued, so the offered rate never
bursts to catch up), and starts them: an :class:`~sipha.loadtest.uac_call.InviteCall` for the
``call`` and ``register+call`` scenarios, a :class:`~sipha.loadtest.uac_txn.RequestTxn` for
``register`` and ``options``.  Past the planned duration (or the call bound) it stops starting
and lets what is in flight finish; ``finished`` turns true when nothing is left.

Outcomes land in the current second's :class:`~sipha.loadtest.stats.IntervalStats`: an attempt
when started, then success (with setup latencies) or failure with its reason.  For REGISTER and
OPTIONS a "call" is one transaction (as SIPp counts a scenario run), also counted in
``transactions_ok`` / ``transactions_failed``.
"""

from __future__ import annotations

import random
from typing import Literal

from sipha.loadtest.core import EngineBase
from sipha.loadtest.messages import MessageBuilder, sdp_offer
from sipha.loadtest.options import ScenarioOptions
from sipha.loadtest.protocol import Plan
from sipha.loadtest.rate import RateSchedule, make_arrivals
from sipha.loadtest.stats import FailureReason
from sipha.loadtest.uac_call import CallSettings, InviteCall
from sipha.loadtest.uac_txn import RequestTxn
from sipha.loadtest.wire import Scan

__all__ = ["UacEngine", "planned_rate", "schedule_of"]


def schedule_of(plan: Plan) -> RateSchedule:
    """The plan's rate schedule: ``plan.rate`` constant, or its ramp."""
    if plan.ramp is None:
        return RateSchedule(plan.rate)
    r = plan.ramp
    return RateSchedule(r.start, step=r.step, interval=r.interval, max=r.max)


def planned_rate(plan: Plan, second: int) -> float:
    """The plan's rate during ``second`` (0 once the planned duration is over)."""
    if plan.duration is not None and second >= plan.duration:
        return 0.0
    return schedule_of(plan).rate(float(second))


class UacEngine(EngineBase):
    """Places calls (or REGISTER / OPTIONS transactions) for one agent.  Sans-IO."""

    def __init__(
        self,
        plan: Plan,
        options: ScenarioOptions,
        *,
        local_host: str,
        local_port: int,
        t0: float,
        rng: random.Random,
    ) -> None:
        super().__init__(
            t0=t0, reliable=plan.transport != "udp", t1=options.t1, t2=options.t2
        )
        self.plan = plan
        self.options = options
        self.rng = rng
        self.scenario = plan.scenario
        self.domain = options.domain or plan.target_host
        self.builder = MessageBuilder(
            local_host=local_host,
            local_port=local_port,
            transport=plan.transport,
            target=plan.target,
            domain=self.domain,
        )
        self.tag_prefix = f"{rng.getrandbits(32):08x}"
        self.sdp = sdp_offer(local_host, 1) if options.sdp else b""
        # Timer B/F (RFC 3261 §17.1.1.2, §17.1.2.2), shortened by a recv_timeout if one is set.
        self.timer_b = 64 * options.t1
        self.ring_timeout = options.ring_timeout
        if options.recv_timeout > 0:
            self.timer_b = min(self.timer_b, options.recv_timeout)
            self.ring_timeout = min(self.ring_timeout, options.recv_timeout)
        self.schedule_ = schedule_of(plan)
        self.arrivals = make_arrivals(options.arrival, self.schedule_, rng)
        self.users = plan.users
        self.password = plan.users.password if plan.users is not None else None
        self.started = 0
        self.throttled = 0
        self.stopped = False
        self.stop_reason = ""
        self._abandoning = False
        self._hold_mean = plan.hold.mean
        self._hold_exp = plan.hold.distribution == "exponential"
        self.call_settings = CallSettings(
            builder=self.builder,
            timers=self.timers,
            tag_prefix=self.tag_prefix,
            domain=self.domain,
            sdp=self.sdp,
            timer_b=self.timer_b,
            ring_timeout=self.ring_timeout,
            password=self.password,
            rng=rng,
        )

    # -- what a call reports (uac_call.CallHost) ------------------------------------------------

    call_answered = EngineBase.record_answered

    def call_succeeded(self, setup_200: float, first_18x: float | None) -> None:
        self.active -= 1
        self.stats.record_success(setup_200, first_18x)

    def call_failed(self, reason: FailureReason | int) -> None:
        self.active -= 1
        self.stats.record_failure(reason)

    # -- what to start --------------------------------------------------------------------------

    def hold_time(self) -> float:
        """A call's hold time: fixed, or exponential with the plan's mean."""
        if self._hold_exp and self._hold_mean > 0:
            return self.rng.expovariate(1.0 / self._hold_mean)
        return self._hold_mean

    def _user(self, i: int) -> str:
        u = self.users
        if u is None or u.count == 0:
            return self.options.from_user
        return f"{u.prefix}{u.first + i % u.count}"

    def _callee(self, i: int) -> str:
        if self.scenario == "register+call" and self.users is not None and self.users.count:
            return self._user(i + 1)
        return self.options.call_user

    def target_rate(self, now: float) -> float:
        """The planned rate at ``now`` (0 once stopped)."""
        return 0.0 if self.stopped else self.schedule_.rate(now - self.t0)

    def stop(self, reason: str = "stopped") -> None:
        """Start no more calls; those in flight go on to their end."""
        if not self.stopped:
            self.stopped = True
            self.stop_reason = reason

    @property
    def finished(self) -> bool:
        """Stopped and nothing in flight."""
        return self.stopped and self.active == 0

    def abandon(self, now: float) -> int:
        """Stop, and count every call still in progress as failed with reason
        ``drain-timeout`` (the drain timeout is over): every attempt then ends counted,
        successful or failed.  Returns how many were abandoned."""
        self.stop(self.stop_reason or "drain-timeout")
        before = self.stats.calls_failed
        self._abandoning = True
        try:
            for handler in list(self.dialogs.values()):
                if isinstance(handler, InviteCall):
                    handler.abandon(now)
                elif isinstance(handler, RequestTxn) and not handler.done:
                    handler.abort(now)
        finally:
            self._abandoning = False
        # Anything in flight that no table holds (none expected) still gets counted.
        while self.active > 0:
            self.active -= 1
            self.stats.record_failure(FailureReason.DRAIN_TIMEOUT)
        return self.stats.calls_failed - before

    def _run_until(self, t: float) -> None:
        if not self.stopped:
            self._start_due(t)
        self._fire_until(t)

    def _start_due(self, t: float) -> None:
        plan = self.plan
        rel = t - self.t0
        limit_reached = plan.duration is not None and rel >= plan.duration
        if limit_reached:
            assert plan.duration is not None
            rel = plan.duration
        n = self.arrivals.due(rel)
        if plan.max_calls is not None and self.started + n >= plan.max_calls:
            n = max(plan.max_calls - self.started, 0)
            limit_reached = True
        if plan.max_concurrent is not None and self.active + n > plan.max_concurrent:
            room = max(plan.max_concurrent - self.active, 0)
            self.throttled += n - room
            n = room
        for _ in range(n):
            self._start_one(t)
        if limit_reached:
            self.stop("duration" if plan.duration is not None else "max-calls")

    def _start_one(self, now: float) -> None:
        i = self.started
        self.started += 1
        self.active += 1
        self.stats.calls_attempted += 1
        scenario = self.scenario
        if scenario == "call" or scenario == "register+call":
            call = InviteCall(self, self.call_settings, i, self._user(i), self._callee(i), now)
            self.dialogs[call.key] = call
            call.send_invite(now)  # CALLING from its creation
            return
        method: Literal["REGISTER", "OPTIONS"] = (
            "REGISTER" if scenario == "register" else "OPTIONS"
        )
        user = self._user(i)
        txn = RequestTxn(
            self,
            self.builder,
            method=method,
            user=user,
            domain=self.domain,
            call_id=f"{i}-{self.tag_prefix}@{self.builder.local_host}",
            cseq=1,
            tag=f"{self.tag_prefix}{i}",
            password=self.password,
            expires=self.options.register_expires,
            on_done=self._txn_done,
            rng=self.rng,
        )
        txn.start(now)

    def _txn_done(self, txn: RequestTxn, ok: bool, status: int, now: float) -> None:
        self.active -= 1
        stats = self.stats
        if ok:
            stats.record_success(now - txn.started)
            stats.transactions_ok += 1
        else:
            timeout = FailureReason.DRAIN_TIMEOUT if self._abandoning else FailureReason.TIMEOUT_F
            stats.record_failure(status if status >= 300 else timeout)
            stats.transactions_failed += 1

    # -- requests from the far end --------------------------------------------------------------

    def on_request(self, msg: Scan, data: bytes, peer: object, now: float) -> None:
        method = msg.method
        if method == b"ACK":
            return
        b = self.builder
        if method == b"BYE":
            call = self.dialogs.get(msg.call_id)
            if isinstance(call, InviteCall):
                call.on_bye(now)
                self.replies.append((b.response(msg, 200, "OK"), peer))
            else:
                self.replies.append((b.response(msg, 481, "Call/Transaction Does Not Exist"), peer))
        elif method == b"OPTIONS":
            self.replies.append((b.response(msg, 200, "OK"), peer))
        else:
            self.replies.append((b.response(msg, 501, "Not Implemented"), peer))
