"""The dispatcher's amplification budget: what it relays to callers that never proved they exist.

Theory of operation
-------------------
UDP sources are spoofable. An INVITE with a victim's address in its Via, never ACKed, makes the
server retransmit its final response until Timer H (RFC 3261 §17.2.1; a UAS core resends its
2xx the same way, §13.3.1.4) and then send a BYE, retransmitted too (Timer E): about sixteen
datagrams for one, 19x the bytes. The server budgets its own retransmissions per destination
(`sipha.transport.reflection`), but its destination is the dispatcher, which relays each one
to the Via below: so the dispatcher budgets what it relays, per caller host, the same way.

Only *unasked repeats* draw on the budget: the first copy of a final response, or of a request
a server sends towards a caller, is one datagram for one the caller sent (or for a call it set
up); so is a copy that answers a retransmission of the caller's request (a caller resending
its request over a lossy or loaded path is answered each time, as RFC 3261 §17.2 wants); and
provisional responses are never repeated by our servers. A repeat is recognised by its identity
(`key`: the caller's branch, the status and the CSeq of a response; the server's branch, the
method and the CSeq of a request) seen within ``memory`` seconds; the copies of each caller
request (by its branch) are counted too, and the n-th copy of a response goes free when the
caller sent at least n copies of the request. Repeats to a caller host
draw on a token bucket of that host (`RetransmitBudget`: ``rate`` a second up to ``burst``);
when it is empty the repeat is dropped and counted. Nothing else changes: transactions and
their timers run as before, and a caller that resends its request is answered as always.

A host that proved it receives what we send is exempt from then on: it answered a request we
relayed to it (its response carried our signed branch, which a blind spoofer never sees), or
it ACKed a 2xx we relayed to it with that 2xx's To tag (which only the 2xx carried: the proof
the server's budget accepts too, `sipha.transport.reflection`). So a caller making calls proves
itself with its first ACK, and only sources that never complete a call stay budgeted.
Streams (TCP, TLS) are exempt: their peer completed a handshake from its address.

Memory is bounded: at most ``max_keys`` identities, request branches and 2xx tags (all live
``memory`` seconds, so the oldest goes first) and the budget's own bounds. Pure: time comes in
as ``now``.
"""

from __future__ import annotations

from sipha.transport import Peer
from sipha.transport.reflection import RetransmitBudget

__all__ = ["AmplificationGuard", "request_key", "response_key"]


class _Expiring:
    """key -> count, each key forgotten ``memory`` seconds after it was first counted; at most
    ``max_keys`` (every key lives as long, so insertion order is expiry order)."""

    __slots__ = ("_entries", "max_keys", "memory")

    def __init__(self, memory: float, max_keys: int) -> None:
        self.memory = memory
        self.max_keys = max_keys
        self._entries: dict[str, tuple[float, int]] = {}

    def get(self, key: str, now: float) -> int:
        entry = self._entries.get(key)
        return 0 if entry is None or entry[0] <= now else entry[1]

    def add(self, key: str, now: float) -> int:
        """Count ``key`` once more; returns the new count."""
        entries = self._entries
        entry = entries.get(key)
        if entry is not None and entry[0] > now:
            n = entry[1] + 1
            entries[key] = (entry[0], n)
            return n
        entries.pop(key, None)
        while entries:
            oldest = next(iter(entries))
            if entries[oldest][0] > now and len(entries) < self.max_keys:
                break
            del entries[oldest]
        entries[key] = (now + self.memory, 1)
        return 1

    def __len__(self) -> int:
        return len(self._entries)


class AmplificationGuard:
    """Decides whether a message relayed to a caller may go (see the module docstring).

    Raises ValueError on construction for a rate, burst, memory or max_keys that is not
    positive.
    """

    __slots__ = ("_asked", "_sent", "_tags", "budget", "suppressed")

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
        # ``memory``: seconds an identity is remembered, Timer H / J (64*T1) with room to spare.
        self._sent = _Expiring(memory, max_keys)  # response identity -> copies relayed
        self._asked = _Expiring(memory, max_keys)  # caller's branch -> copies of its request
        self._tags = _Expiring(memory, max_keys)  # Call-ID, To tag, host of a relayed 2xx
        self.suppressed = 0

    def verify(self, host: str) -> None:
        """``host`` answered a request we relayed to it: never budgeted again."""
        self.budget.verify(host)

    def verified(self, host: str) -> bool:
        return self.budget.verified(host)

    def issued(self, call_id: str, to_tag: str | None, host: str, now: float) -> None:
        """A 2xx with ``to_tag`` was relayed to ``host``: an ACK from it carrying the tag
        proves it received the 2xx (`acked`)."""
        if to_tag:
            self._tags.add(f"{call_id}\x00{to_tag}\x00{host}", now)

    def acked(self, call_id: str, to_tag: str | None, host: str, now: float) -> None:
        """``host`` sent an ACK; if it carries the To tag of a 2xx we relayed to it, the host
        is verified."""
        if to_tag and self._tags.get(f"{call_id}\x00{to_tag}\x00{host}", now):
            self.budget.verify(host)

    def asked(self, branch: str | None, now: float) -> None:
        """A caller sent (or resent) the request with this branch: one more answer is owed to
        it, outside the budget (a response to a retransmission is one datagram for one)."""
        if branch is not None:
            self._asked.add(branch, now)

    def allow(self, key: str, peer: Peer, now: float, branch: str | None = None) -> bool:
        """Whether the message with identity ``key`` may be relayed to ``peer`` now; ``branch``
        is the caller's (a response's), None for a request a server sends."""
        if peer.transport != "udp" or self.budget.verified(peer.host):
            return True
        copies = self._sent.add(key, now)
        if copies == 1:
            return True  # the first copy: one datagram for one
        if branch is not None and copies <= self._asked.get(branch, now):
            return True  # the caller resent its request: this copy answers it
        if self.budget.allow(peer.host, now):
            return True
        self.suppressed += 1
        return False

    @property
    def tracked(self) -> int:
        """Identities and hosts held in memory."""
        return len(self._sent) + len(self._asked) + len(self._tags) + self.budget.tracked_hosts


def response_key(branch: str | None, status: int, cseq: str) -> str:
    """The identity of a response relayed to a caller (its Via branch after ours is popped)."""
    return f"r\x00{branch}\x00{status}\x00{cseq}"


def request_key(branch: str | None, method: str, cseq: str) -> str:
    """The identity of a request a server sends towards a caller (the server's branch)."""
    return f"q\x00{branch}\x00{method}\x00{cseq}"
