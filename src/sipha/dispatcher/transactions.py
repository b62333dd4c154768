"""The open-transaction table: every forwarded initial request, its attempts, phase and deadlines.

Theory of operation
-------------------
A `Pending` is one transaction of the caller (`forwarding` has its rules). The table indexes it
by the caller's transaction key (`branch_digest_input`: equal for the request, its
retransmissions, its CANCEL and the ACK of a non-2xx) and by every branch we sent it with, so
a response, a retransmission, an ACK or a CANCEL finds it. A transaction enters the table with
its first attempt (`open`): there is never one without an attempt to forward to.

The table owns both clocks of a transaction, so a standby that loads a snapshot has them too:

* the failover deadline of a ``CALLING`` transaction, in a FIFO (every deadline is ``now`` plus
  the same ``failover_timeout``, so appending keeps it sorted); an entry whose transaction left
  ``CALLING`` or got a later deadline is skipped when it comes up. `due()` hands out the
  transactions whose deadline passed;
* the expiry (Timer C for an INVITE, ``linger`` once completed), on a one-second wheel;
  `sweep()` hands out the expired ones, which the forwarder terminates by the table.

`snapshot()` exports every transaction with its phase, each attempt's phase and the time left
to its deadline; `apply()` loads them and re-arms the deadlines, in deadline order. Between
snapshots the active journals each change as a delta (`TransactionSet`, with the request bytes
only when the transaction opens; `TransactionRemoved`) and the standby replays them with
`apply_delta()`, so it holds every transaction exactly as the active left it.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import msgspec

from .forwarding import AttemptPhase, Phase

if TYPE_CHECKING:
    from sipha.transport import Peer

    from .state import Server

__all__ = [
    "Pending",
    "PendingSnapshot",
    "TransactionRemoved",
    "TransactionSet",
    "TransactionTable",
]


class Pending:
    """An open initial-request transaction and its failover attempts."""

    __slots__ = (
        "attempt_phases",
        "attempts",
        "branches",
        "call_id",
        "current",
        "deadline",
        "expires",
        "is_invite",
        "key",
        "method",
        "phase",
        "raw",
        "source",
    )

    def __init__(
        self, key: bytes, raw: bytes, source: Peer, call_id: str, method: str, expires: float
    ) -> None:
        self.key = key
        """The transaction's identity (`branch_digest_input` without salt)."""
        self.raw = raw
        """The request as received, before our edits: retries are rebuilt from it."""
        self.source = source
        self.call_id = call_id
        self.method = method
        self.is_invite = method == "INVITE"
        self.attempts: list[Server] = []
        self.branches: list[str] = []
        self.attempt_phases: list[AttemptPhase] = []
        self.current = 0
        """The attempt in charge: the latest one, or the winner once completed."""
        self.phase = Phase.CALLING
        self.deadline = 0.0
        """When the current attempt fails over without a response (CALLING only)."""
        self.expires = expires


class PendingSnapshot(msgspec.Struct, frozen=True):
    key: bytes
    raw: bytes
    source: tuple[str, str, int]
    call_id: str
    method: str
    attempts: list[int]
    branches: list[str]
    attempt_phases: list[str]
    current: int
    phase: str
    deadline_in: float
    ttl: float


class TransactionSet(msgspec.Struct, frozen=True, tag=True):
    """A transaction opened or changed; ``tx.raw`` is empty when only its phase moved."""

    tx: PendingSnapshot


class TransactionRemoved(msgspec.Struct, frozen=True, tag=True):
    key: bytes


class TransactionTable:
    """The index, the failover deadlines and the expiry wheel (see the module docstring)."""

    __slots__ = ("_deadlines", "_swept", "_wheel", "index")

    def __init__(self) -> None:
        self.index: dict[str | bytes, Pending] = {}
        self._deadlines: deque[tuple[float, Pending]] = deque()
        self._wheel: dict[int, list[Pending]] = {}
        self._swept = -1

    def __len__(self) -> int:
        return len({id(p) for p in self.index.values()})

    def held(self) -> int:
        """Entries the expiry wheel and the deadline FIFO still hold (bounded upkeep)."""
        return sum(len(b) for b in self._wheel.values()) + len(self._deadlines)

    def get(self, key: str | bytes) -> Pending | None:
        return self.index.get(key)

    # -- membership -------------------------------------------------------------------------
    def open(self, p: Pending) -> None:
        """Add ``p``, which has its first attempt, by its key and its branch."""
        assert p.attempts, "a transaction enters the table with its first attempt"
        self.index[p.key] = p
        for b in p.branches:
            self.index[b] = p
        self._expire_at(p, p.expires)

    def add_branch(self, p: Pending, branch: str) -> None:
        self.index[branch] = p

    def keep_until(self, p: Pending, expires: float) -> None:
        """A completed transaction lingers until ``expires`` for late answers."""
        p.expires = expires
        self._expire_at(p, expires)

    def _expire_at(self, p: Pending, expires: float) -> None:
        bucket = int(expires)
        lst = self._wheel.get(bucket)
        if lst is None:
            self._wheel[bucket] = [p]
        else:
            lst.append(p)

    def drop(self, p: Pending) -> None:
        """Remove ``p``; it is terminated and lets go of its request bytes (the wheel holds the
        object until its bucket comes due, minutes for an INVITE)."""
        index = self.index
        if index.get(p.key) is p:
            del index[p.key]
        for b in p.branches:
            if index.get(b) is p:
                del index[b]
        p.phase = Phase.TERMINATED
        p.deadline = 0.0
        p.raw = b""
        p.key = b""
        p.branches.clear()
        p.attempt_phases.clear()

    # -- deadlines --------------------------------------------------------------------------
    def arm(self, p: Pending, deadline: float) -> None:
        p.deadline = deadline
        self._deadlines.append((deadline, p))

    def _live_head(self) -> tuple[float, Pending] | None:
        q = self._deadlines
        # Most transactions are answered long before their failover time: drop those entries
        # here so they never cost a timer wake-up.
        while q:
            deadline, p = q[0]
            if p.deadline == deadline and p.phase is Phase.CALLING:
                return q[0]
            q.popleft()
        return None

    def next_deadline(self) -> float:
        head = self._live_head()
        return head[0] if head is not None else float("inf")

    def due(self, now: float) -> list[Pending]:
        """The CALLING transactions whose failover deadline has come (each handed out once)."""
        out: list[Pending] = []
        q = self._deadlines
        while (head := self._live_head()) is not None and head[0] <= now:
            q.popleft()
            out.append(head[1])
        return out

    def waiting_on(self, server: Server) -> list[Pending]:
        """The transactions whose current attempt is on ``server`` and have no final answer."""
        seen: set[int] = set()
        out: list[Pending] = []
        for p in self.index.values():
            if id(p) in seen:
                continue
            seen.add(id(p))
            if p.phase in (Phase.CALLING, Phase.PROCEEDING) and p.attempts[p.current] is server:
                out.append(p)
        return out

    # -- expiry ---------------------------------------------------------------------------
    def sweep(self, now: float) -> list[Pending]:
        """The transactions whose expiry has come, still in the table (the forwarder ends
        them by the table's EXPIRED rule, then drops them)."""
        second = int(now)
        out: list[Pending] = []
        start = self._swept + 1 if self._swept >= 0 else min([*self._wheel, second])
        for bucket in range(start, second):
            for p in self._wheel.pop(bucket, ()):
                if p.expires <= now and p.phase is not Phase.TERMINATED and (
                    self.index.get(p.key) is p
                ):
                    out.append(p)
        self._swept = second - 1
        return out

    def prune(self, now: float) -> None:
        """A standby's upkeep (its timer does not run): forget expired transactions (the
        active journals their dialogs' fate) and skipped deadline entries, so neither the wheel
        nor the deadline FIFO grows while it follows the active for hours."""
        for p in self.sweep(now):
            self.drop(p)
        self._live_head()

    # -- replication ----------------------------------------------------------------------
    def snapshot(self, now: float) -> list[PendingSnapshot]:
        seen: set[int] = set()
        out = []
        for p in self.index.values():
            if id(p) in seen:
                continue
            seen.add(id(p))
            out.append(export(p, now, p.raw))
        return out

    def apply(self, snaps: list[PendingSnapshot], servers: dict[int, Server], now: float) -> None:
        """Replace the table with ``snaps``; entries naming an unknown server are skipped.
        Raises ValueError for an unknown phase name."""
        self.index.clear()
        self._wheel.clear()
        self._deadlines.clear()
        self._swept = -1
        loaded = [self._load(ps, None, servers, now) for ps in snaps]
        calling = [p for p in loaded if p is not None and p.phase is Phase.CALLING]
        for p in sorted(calling, key=lambda p: p.deadline):
            self.arm(p, p.deadline)

    def apply_delta(
        self, delta: TransactionSet | TransactionRemoved, servers: dict[int, Server], now: float
    ) -> None:
        """Replay one journaled change. Raises ValueError for an unknown phase name."""
        if isinstance(delta, TransactionRemoved):
            p = self.index.get(delta.key)
            if p is not None:
                self.drop(p)
            return
        old = self.index.get(delta.tx.key)
        p = self._load(delta.tx, old, servers, now)
        if p is not None and p.phase is Phase.CALLING:
            self.arm(p, p.deadline)

    def _load(
        self, ps: PendingSnapshot, old: Pending | None, servers: dict[int, Server], now: float
    ) -> Pending | None:
        from sipha.transport import Peer

        attempts = [servers[u] for u in ps.attempts if u in servers]
        n = len(ps.attempts)
        raw = ps.raw or (old.raw if old is not None else b"")
        if (
            len(attempts) != n or n == 0 or len(ps.branches) != n or not raw
            or len(ps.attempt_phases) != n or not 0 <= ps.current < n
        ):
            return None
        phase = Phase(ps.phase)
        attempt_phases = [AttemptPhase(a) for a in ps.attempt_phases]
        if old is not None:
            self.drop(old)
        if phase is Phase.TERMINATED:
            return None
        p = Pending(ps.key, raw, Peer(*ps.source), ps.call_id, ps.method, now + ps.ttl)
        p.attempts = attempts
        p.branches = list(ps.branches)
        p.attempt_phases = attempt_phases
        p.current = ps.current
        p.phase = phase
        self.open(p)
        if phase is Phase.CALLING:
            p.deadline = now + ps.deadline_in
        return p


def export(p: Pending, now: float, raw: bytes) -> PendingSnapshot:
    """``p`` as a snapshot entry (times relative to ``now``), carrying ``raw``."""
    return PendingSnapshot(
        p.key, raw, (p.source.transport, p.source.host, p.source.port), p.call_id, p.method,
        [s.uid for s in p.attempts], list(p.branches), [a.value for a in p.attempt_phases],
        p.current, p.phase.value, p.deadline - now if p.deadline else 0.0, p.expires - now,
    )
