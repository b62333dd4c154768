"""Transaction timers (RFC 3261 §17, Table 4; RFC 6026 §8.4 Timers L and M).

Theory of operation
-------------------
A transaction never reads a clock. It asks for a timer with a
:class:`~sipha.sip.transaction.events.StartTimer` action carrying a delay, and later receives
``TimerFired(timer)``. All durations derive from three values, T1 (an RTT estimate), T2 (the
longest retransmit interval for non-INVITE requests and INVITE responses) and T4 (how long the
network may hold a message), held in :class:`TimerConfig`.

The wait timers D, I, J and K last zero seconds on a reliable transport (RFC 3261 Table 4). The
machines do not arm a zero timer: they go straight to Terminated, which is what a zero-length
wait means and saves the caller a pointless round through its timer heap. The retransmit timers
A, E and G are never armed on a reliable transport.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..fastenum import IdentityEnum

__all__ = ["DEFAULT_TIMERS", "TimerConfig", "TimerName"]


class TimerName(IdentityEnum):
    """The timers of RFC 3261 Table 4 plus RFC 6026's L and M."""

    A = "A"  # INVITE request retransmit (UDP), doubles from T1
    B = "B"  # INVITE transaction timeout, 64*T1
    D = "D"  # wait for response retransmits after a non-2xx final: 32 s UDP, 0 reliable
    E = "E"  # non-INVITE request retransmit (UDP), min(2E, T2); T2 once Proceeding
    F = "F"  # non-INVITE transaction timeout, 64*T1
    G = "G"  # INVITE final response retransmit (UDP), min(2G, T2)
    H = "H"  # wait for ACK, 64*T1
    I = "I"  # noqa: E741  # wait for ACK retransmits: T4 UDP, 0 reliable
    J = "J"  # wait for non-INVITE request retransmits: 64*T1 UDP, 0 reliable
    K = "K"  # wait for non-INVITE response retransmits: T4 UDP, 0 reliable
    L = "L"  # RFC 6026: server INVITE Accepted, wait for INVITE retransmits, 64*T1
    M = "M"  # RFC 6026: client INVITE Accepted, wait for 2xx retransmits, 64*T1


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1, T2, T4 (RFC 3261 §17.1.1.1, §17.1.2.2, Table 4) and Timer D's UDP floor.

    Raises ``ValueError`` on construction when a value is not positive or T2 < T1 (a
    configuration error, not a protocol one).
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    # RFC 3261 §17.1.1.2: "at least 32 seconds for unreliable transports".
    d: float = 32.0

    def __post_init__(self) -> None:
        if not (self.t1 > 0 and self.t2 > 0 and self.t4 > 0 and self.d > 0):
            raise ValueError("T1, T2, T4 and D must be positive")
        if self.t2 < self.t1:
            raise ValueError("T2 must not be smaller than T1")

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J (UDP), L and M."""
        return 64 * self.t1

    def wait(self, timer: TimerName, *, reliable: bool) -> float:
        """Duration of a one-shot timer (B, D, F, H, I, J, K, L, M); 0 means "none needed".

        Raises ``ValueError`` for the retransmit timers A, E and G, whose interval depends on
        the previous one (see :meth:`first_interval` and :meth:`next_interval`).
        """
        match timer:
            case TimerName.B | TimerName.F | TimerName.H | TimerName.L | TimerName.M:
                return self.timeout
            case TimerName.D:
                return 0.0 if reliable else self.d
            case TimerName.I | TimerName.K:
                return 0.0 if reliable else self.t4
            case TimerName.J:
                return 0.0 if reliable else self.timeout
            case _:
                raise ValueError(f"Timer {timer.value} is a retransmit timer")

    def first_interval(self, timer: TimerName) -> float:
        """Initial interval of a retransmit timer A, E or G: T1."""
        if timer not in (TimerName.A, TimerName.E, TimerName.G):
            raise ValueError(f"Timer {timer.value} is not a retransmit timer")
        return self.t1

    def next_interval(self, timer: TimerName, previous: float) -> float:
        """Interval after ``previous``: A doubles without bound (B ends it, §17.1.1.2);
        E and G double up to T2 (§17.1.2.2, §17.2.1)."""
        if timer is TimerName.A:
            return 2 * previous
        if timer in (TimerName.E, TimerName.G):
            return min(2 * previous, self.t2)
        raise ValueError(f"Timer {timer.value} is not a retransmit timer")


DEFAULT_TIMERS = TimerConfig()
