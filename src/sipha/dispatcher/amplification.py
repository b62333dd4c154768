"""The dispatcher's amplification budget: what it relays to callers that never proved they exist.

Theory of operation
-------------------
UDP sources are spoofable. An INVITE with a victim's address in its Via, never ACKed, makes the
server retransmit its final response until Timer H (RFC 3261 §17.2.1; a UAS core resends its
2xx the same way, §13.3.1.4) and then send a BYE, retransmitted too (Timer E): about sixteen
datagrams for one, 19x the bytes. The server budgets its own retransmissions per destination
(`sipha.transport.reflection`), but its destination is the dispatcher, which relays each one
to the Via below: so the dispatcher budgets what it relays, per caller host, the same way.

Only *repeats* draw on the budget: the first copy of a final response or of a request a server
sends towards a caller is one datagram for one the caller sent (or for a call it set up), and
provisional responses are never repeated by our servers. A repeat is recognised by its identity
(`key`: the caller's branch, the status and the CSeq of a response; the server's branch, the
method and the CSeq of a request) seen within ``memory`` seconds. Repeats to a caller host
draw on a token bucket of that host (`RetransmitBudget`: ``rate`` a second up to ``burst``);
when it is empty the repeat is dropped and counted. Nothing else changes: transactions and
their timers run as before, and a caller that resends its request is answered as always.

A host that proved it receives what we send is exempt from then on: it answered a request we
relayed to it (its response carried our signed branch, which a blind spoofer never sees).
Streams (TCP, TLS) are exempt: their peer completed a handshake from its address.

Memory is bounded: at most ``max_keys`` identities (all live ``memory`` seconds, so the oldest
goes first) and the budget's own bounds. Pure: time comes in as ``now``.
"""

from __future__ import annotations

from sipha.transport import Peer
from sipha.transport.reflection import RetransmitBudget

__all__ = ["AmplificationGuard", "request_key", "response_key"]


class AmplificationGuard:
    """Decides whether a message relayed to a caller may go (see the module docstring).

    Raises ValueError on construction for a rate, burst, memory or max_keys that is not
    positive.
    """

    __slots__ = ("_seen", "budget", "max_keys", "memory", "suppressed")

    def __init__(
        self,
        rate: float = 50.0,
        burst: float = 100.0,
        *,
        memory: float = 64.0,
        max_keys: int = 100_000,
        max_hosts: int = 65_536,
    ) -> None:
        if memory <= 0 or max_keys <= 0:
            raise ValueError("memory and max_keys must be positive")
        self.budget = RetransmitBudget(rate, burst, max_hosts)
        self.memory = memory
        """Seconds an identity is remembered: Timer H / Timer J (64*T1) with room to spare."""
        self.max_keys = max_keys
        self._seen: dict[str, float] = {}  # key -> when it is forgotten (insertion order)
        self.suppressed = 0

    def verify(self, host: str) -> None:
        """``host`` answered a request we relayed to it: never budgeted again."""
        self.budget.verify(host)

    def allow(self, key: str, peer: Peer, now: float) -> bool:
        """Whether the message with identity ``key`` may be relayed to ``peer`` now."""
        if peer.transport != "udp" or self.budget.verified(peer.host):
            return True
        seen = self._seen
        until = seen.get(key)
        if until is None or until <= now:
            self._remember(key, now)
            return True  # the first copy: one datagram for one
        if self.budget.allow(peer.host, now):
            return True
        self.suppressed += 1
        return False

    def _remember(self, key: str, now: float) -> None:
        seen = self._seen
        seen.pop(key, None)
        # Every entry lives `memory` seconds, so insertion order is expiry order.
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] > now and len(seen) < self.max_keys:
                break
            del seen[oldest]
        seen[key] = now + self.memory

    @property
    def tracked(self) -> int:
        """Identities and hosts held in memory."""
        return len(self._seen) + self.budget.tracked_hosts


def response_key(branch: str | None, status: int, cseq: str) -> str:
    """The identity of a response relayed to a caller (its Via branch after ours is popped)."""
    return f"r\x00{branch}\x00{status}\x00{cseq}"


def request_key(branch: str | None, method: str, cseq: str) -> str:
    """The identity of a request a server sends towards a caller (the server's branch)."""
    return f"q\x00{branch}\x00{method}\x00{cseq}"
