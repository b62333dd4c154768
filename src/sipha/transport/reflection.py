"""A budget for the datagrams a node sends unasked to sources that never proved they exist.

Theory of operation
-------------------
UDP source addresses are spoofable, and a server transaction retransmits its final response
until the ACK comes (RFC 3261 §17.2.1 Timer G; a UAS core does the same for a 2xx, §13.3.1.4),
after which a UAS sends a BYE and retransmits that (Timer E). An attacker who sends INVITEs
with a victim's address and never ACKs gets the victim about sixteen datagrams for each one:
a reflector with a 19x gain in bytes.

Only retransmissions are amplification: the first answer to a request is one datagram for
one. So every retransmission (timer-driven, to a peer) draws on a token bucket per destination
host, ``rate`` tokens a second up to ``burst``; when the bucket is empty the retransmission is
skipped and counted (the transaction's timers still run, so RFC 3261's timing is unchanged and
a peer that resends its request is answered as always). A host that proved it receives what we
send (it answered one of our requests: a response matched a client transaction, which a blind
spoofer cannot do) is exempt from then on.

Memory is bounded: at most ``max_hosts`` buckets and ``max_hosts`` verified hosts, the oldest
dropped first (a dropped bucket starts full again, a dropped host must prove itself again).
Pure: time comes in as ``now``.
"""

from __future__ import annotations

__all__ = ["RetransmitBudget"]


class RetransmitBudget:
    """Token buckets of retransmissions per destination host.

    Raises ValueError on construction when ``rate``, ``burst`` or ``max_hosts`` is not positive.
    """

    __slots__ = ("_buckets", "_verified", "burst", "max_hosts", "rate", "suppressed")

    def __init__(self, rate: float = 50.0, burst: float = 100.0, max_hosts: int = 65_536) -> None:
        if rate <= 0 or burst <= 0 or max_hosts <= 0:
            raise ValueError("rate, burst and max_hosts must be positive")
        self.rate = rate
        self.burst = burst
        self.max_hosts = max_hosts
        self._buckets: dict[str, tuple[float, float]] = {}  # host -> (tokens, at)
        self._verified: dict[str, None] = {}  # insertion-ordered set
        self.suppressed = 0

    def verify(self, host: str) -> None:
        """``host`` answered one of our requests: its retransmissions are no longer budgeted."""
        verified = self._verified
        if host in verified:
            return
        if len(verified) >= self.max_hosts:
            del verified[next(iter(verified))]
        verified[host] = None
        self._buckets.pop(host, None)

    def verified(self, host: str) -> bool:
        return host in self._verified

    def allow(self, host: str, now: float) -> bool:
        """Whether one retransmission to ``host`` may go now (takes a token if so)."""
        if host in self._verified:
            return True
        buckets = self._buckets
        entry = buckets.get(host)
        if entry is None:
            if len(buckets) >= self.max_hosts:
                del buckets[next(iter(buckets))]
            tokens = self.burst
        else:
            tokens = min(self.burst, entry[0] + (now - entry[1]) * self.rate)
        if tokens < 1.0:
            buckets[host] = (tokens, now)
            self.suppressed += 1
            return False
        buckets[host] = (tokens - 1.0, now)
        return True

    @property
    def tracked_hosts(self) -> int:
        return len(self._buckets) + len(self._verified)
