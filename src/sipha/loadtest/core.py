"""What every load engine shares: one timer heap, per-second statistics, outgoing queues.

Theory of operation
-------------------
An engine is sans-IO, like the SIP core: the runner feeds it received datagrams with
``on_message(data, peer, now)``, calls ``advance(now)`` on every tick, and after each call sends
what the engine queued in ``out`` (to the target) and ``replies`` (to a given peer).  Time is a
float passed in (``time.monotonic`` in the runner, virtual time in tests).

Why not :mod:`sipha.sip.transaction`?  That layer models every RFC 3261 transaction as its own
state machine with its own timers and actions; a load generator holding 10,000 calls and
creating thousands a second pays for each object and event.  Here each call is one small
slotted object holding *one* pending deadline in a shared heap (the retransmission Timer A/E
and the timeout Timer B/F folded together: on expiry the call checks which one is due), so a
call costs a heap push per timer, not a transaction table.  The RFC rules kept are those a
peer can observe: Timer A doubling without cap for INVITE, Timer E capped at T2 for non-INVITE
(RFC 3261 §17.1.1.2, §17.1.2.2), Timer B/F = 64*T1, no retransmission over TCP, ACK for non-2xx
on the INVITE's branch and a new transaction for ACK to 2xx (§17.1.1.3, §13.2.2.4).

Cancelling a timer bumps the owner's ``gen``; stale heap entries are skipped when popped.

What a call or transaction may do to its engine is :class:`Host`: queue what it sends, arm or
disarm its one timer, count a retransmission, be found by its Call-ID or forgotten.  Outcomes
(a call succeeded or failed) go through the UAC's and UAS's own narrow protocols; nothing else
of the engine is theirs to touch.

Seconds: second *n* of the run is ``[t0 + n, t0 + n + 1)``.  ``advance`` closes every second
whose end has passed, first running what was due before that end, so a tick that comes late
still puts each attempt in the second the plan gave it.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sipha.loadtest.stats import IntervalStats
from sipha.loadtest.wire import Scan, scan

__all__ = ["EngineBase", "Host", "SipTimers", "TimerOwner"]


class TimerOwner(Protocol):
    """Anything with a timer in the heap: a call, a transaction, a registration."""

    gen: int

    def on_timer(self, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class SipTimers:
    """T1, T2 and whether the transport is reliable (no retransmissions over TCP/TLS,
    RFC 3261 §17.1.1.2)."""

    t1: float
    t2: float
    reliable: bool


class Host(Protocol):
    """The engine as a call or a transaction sees it (see the module docstring)."""

    # What to send: to the target, and (data, peer) for a given peer.  Lists, appended to
    # directly: a Python call per message would cost more than the rest of the table's work.
    out: list[bytes]
    replies: list[tuple[bytes, Any]]

    @property
    def timers(self) -> SipTimers: ...

    def arm(self, owner: TimerOwner, deadline: float) -> None:
        """(Re)arm ``owner``'s one timer."""

    def disarm(self, owner: TimerOwner) -> None:
        """Cancel ``owner``'s timer."""

    def retransmitted(self) -> None:
        """Count one retransmission in this second's statistics."""

    def listen(self, key: bytes, handler: ResponseHandler) -> None:
        """Route the responses of Call-ID ``key`` to ``handler``."""

    def forget(self, key: bytes, handler: ResponseHandler) -> None:
        """Stop routing Call-ID ``key`` (if it still routes to ``handler``)."""


class ResponseHandler(Protocol):
    """A dialog or transaction that receives the responses for its Call-ID."""

    def on_response(self, msg: Scan, data: bytes, now: float) -> None: ...


class EngineBase:
    """Timers, seconds, counters and queues shared by the UAC and UAS engines."""

    def __init__(self, *, t0: float, reliable: bool, t1: float, t2: float) -> None:
        self.t0 = t0
        self.second = 0
        self.next_boundary = t0 + 1.0
        self.reliable = reliable  # TCP: no retransmissions (RFC 3261 §17.1.1.2)
        self.t1 = t1
        self.t2 = t2
        self.timers = SipTimers(t1, t2, reliable)
        self.stats = IntervalStats()
        # Closed seconds, oldest first: (second, stats).  The runner drains it.
        self.reports: list[tuple[int, IntervalStats]] = []
        self.out: list[bytes] = []  # to the target
        self.replies: list[tuple[bytes, Any]] = []  # (data, peer) for responses
        self.dialogs: dict[bytes, ResponseHandler] = {}
        self.active = 0  # calls in progress: the concurrent_calls gauge
        self.stray = 0  # responses matching nothing (late retransmissions)
        self._heap: list[tuple[float, int, TimerOwner, int]] = []
        self._seq = itertools.count()
        self.on_second: Callable[[int, IntervalStats], None] | None = None

    # -- timers ---------------------------------------------------------------------------------

    def next_deadline(self) -> float:
        """The earliest thing the engine must do: a timer or the end of the second."""
        heap = self._heap
        while heap and heap[0][2].gen != heap[0][3]:
            heapq.heappop(heap)
        nxt = self.next_boundary
        if heap and heap[0][0] < nxt:
            nxt = heap[0][0]
        return nxt

    def _fire_until(self, t: float) -> None:
        heap = self._heap
        pop = heapq.heappop
        while heap and heap[0][0] <= t:
            _, _, owner, gen = pop(heap)
            if owner.gen == gen:
                owner.on_timer(t)

    # -- the Host protocol (what calls and transactions may do) --------------------------------

    def arm(self, owner: TimerOwner, deadline: float) -> None:
        # Any earlier timer of ``owner`` is cancelled: its heap entry carries an old gen.
        owner.gen += 1
        heapq.heappush(self._heap, (deadline, next(self._seq), owner, owner.gen))

    @staticmethod
    def disarm(owner: TimerOwner) -> None:
        owner.gen += 1

    def retransmitted(self) -> None:
        self.stats.retransmissions += 1

    def listen(self, key: bytes, handler: ResponseHandler) -> None:
        self.dialogs[key] = handler

    def forget(self, key: bytes, handler: ResponseHandler) -> None:
        if self.dialogs.get(key) is handler:
            del self.dialogs[key]

    # -- time -----------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Run everything due by ``now``, closing each second that ended on the way."""
        while now >= self.next_boundary:
            boundary = self.next_boundary
            self._run_until(boundary - 1e-9)
            self._close_second()
        self._run_until(now)

    def _run_until(self, t: float) -> None:
        self._fire_until(t)

    def _close_second(self) -> None:
        stats = self.stats
        stats.concurrent_calls = self.gauge()
        self.reports.append((self.second, stats))
        if self.on_second is not None:
            self.on_second(self.second, stats)
        self.stats = IntervalStats()
        self.second += 1
        self.next_boundary += 1.0

    def record_answered(self, now: float) -> None:
        """A call was answered now: mark its 10 ms slot of the current second."""
        self.stats.record_answered(now - self.next_boundary + 1.0)

    def gauge(self) -> int:
        """The concurrent-calls gauge reported at the end of each second."""
        return self.active

    def flush_partial_second(self) -> None:
        """Close the current second now (end of run), even though it has not ended."""
        self._close_second()

    # -- receiving ------------------------------------------------------------------------------

    def on_message(self, data: bytes, peer: Any, now: float) -> None:
        """One received message.  Never raises for bad bytes (counted as stray)."""
        msg = scan(data)
        if msg.status:
            handler = self.dialogs.get(msg.call_id)
            if handler is None:
                self.stray += 1
                return
            handler.on_response(msg, data, now)
        elif msg.method:
            self.on_request(msg, data, peer, now)
        else:
            self.stray += 1

    def on_request(self, msg: Scan, data: bytes, peer: Any, now: float) -> None:
        """A request arrived; engines override."""
        self.stray += 1

    @property
    def idle(self) -> bool:
        """No call or transaction in progress."""
        return not self.dialogs
