"""Everything a dispatcher remembers, in one place, so a standby can copy it.

Theory of operation
-------------------
Three tables hold all replicable state:

* ``servers``: one `Server` per SIP server (configuration, health, load counters), by uid;
* ``dialogs``: the Call-ID affinity table, Call-ID -> `Dialog` (server, phase, expiry). It routes
  in-dialog requests that carry no Route (SIPp's ``uac`` sends its ACK and BYE to the service
  address) and keeps a call's later transactions (a re-INVITE after a 401) on its server;
* ``pending``: open initial-request transactions (`Pending`), by each branch we sent them
  with, so a response, a retransmission, an ACK or a CANCEL finds its transaction.

Load accounting happens only in the methods here: a server's ``active_calls`` (read by the
``lc``/``wlc``/``cl``... schedulers) is its pending INVITEs plus its confirmed dialogs.

Expiry uses one-second wheels (dict of second -> list of keys): appending a key costs one list
append, and a sweep visits only the buckets that have come due, so 100,000 held dialogs cost no
periodic scan. An entry whose expiry moved later is simply skipped when its old bucket comes
due; the later bucket holds it too.

`snapshot()` exports everything as typed structs with times relative to ``now`` (monotonic
clocks differ between hosts) and `apply()` loads one. With ``journal`` on, every dialog and
health change is also appended to a list of typed deltas that `drain_deltas()` hands out and
`apply_delta()` replays: the HA layer streams those to its standby.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import msgspec

from .health import HealthSettings, HealthState, ServerHealth
from .schedulers import Destination

if TYPE_CHECKING:
    from sipha.transport import Peer

__all__ = [
    "Dialog",
    "DialogPhase",
    "DialogRemoved",
    "DialogSet",
    "DispatcherState",
    "Pending",
    "Server",
    "ServerStateSet",
    "StateSnapshot",
]


class DialogPhase(enum.Enum):
    EARLY = "early"
    """An INVITE is pending on the server (counted as a pending INVITE)."""
    CONFIRMED = "confirmed"
    """A 2xx was seen (counted as an active dialog) until BYE or expiry."""
    IDLE = "idle"
    """Not counted: the INVITE failed, the BYE went by, or a non-INVITE transaction."""


class Server:
    """One SIP server behind the dispatcher."""

    __slots__ = (
        "calls_total",
        "dest",
        "dialogs",
        "health",
        "peer",
        "pending",
        "probe_rtt_ms",
        "probing",
        "removed",
        "route",
        "token",
        "uid",
        "uri",
    )

    def __init__(
        self,
        uid: int,
        dest: Destination,
        uri: str,
        peer: Peer,
        *,
        probing: bool,
        settings: HealthSettings,
        state: HealthState = HealthState.ACTIVE,
    ) -> None:
        self.uid = uid
        self.dest = dest
        self.uri = uri
        self.peer = peer
        self.probing = probing
        self.health = ServerHealth(settings, state)
        self.pending = 0
        self.dialogs = 0
        self.calls_total = 0
        self.probe_rtt_ms: float | None = None
        self.token = format(uid, "x")
        self.route = ""  # our Record-Route value naming this server; set by the router
        self.removed = False

    @property
    def id(self) -> str:
        return self.dest.id

    @property
    def state(self) -> HealthState:
        return self.health.state

    def add_pending(self, n: int) -> None:
        self.pending += n
        self.dest.active_calls = self.pending + self.dialogs

    def add_dialogs(self, n: int) -> None:
        self.dialogs += n
        self.dest.active_calls = self.pending + self.dialogs


class Dialog:
    """A Call-ID's affinity entry: about 60 bytes plus the Call-ID string."""

    __slots__ = ("expires", "phase", "server")

    def __init__(self, server: Server, phase: DialogPhase, expires: float) -> None:
        self.server = server
        self.phase = phase
        self.expires = expires


class Pending:
    """An open initial-request transaction and its failover attempts."""

    __slots__ = (
        "attempts",
        "branches",
        "call_id",
        "cancelled",
        "deadline",
        "expires",
        "final",
        "is_invite",
        "key",
        "method",
        "raw",
        "responded",
        "source",
        "winner",
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
        self.responded: list[bool] = []
        self.deadline = 0.0
        """When the current attempt fails over without a response; 0 = no timer."""
        self.final = False
        self.cancelled = False
        self.winner: Server | None = None
        self.expires = expires


# --- snapshots and deltas ------------------------------------------------------------------


class ServerSnapshot(msgspec.Struct, frozen=True):
    uid: int
    id: str
    uri: str
    weight: int
    priority: int
    maxload: int
    probing: bool
    state: str
    pending: int
    dialogs: int


class DialogSnapshot(msgspec.Struct, frozen=True, array_like=True):
    call_id: str
    server_uid: int
    phase: str
    ttl: float


class PendingSnapshot(msgspec.Struct, frozen=True):
    key: bytes
    raw: bytes
    source: tuple[str, str, int]
    call_id: str
    method: str
    attempts: list[int]
    branches: list[str]
    responded: list[bool]
    deadline_in: float
    final: bool
    winner_uid: int | None
    ttl: float


class StateSnapshot(msgspec.Struct, frozen=True):
    version: int
    next_uid: int
    servers: list[ServerSnapshot]
    dialogs: list[DialogSnapshot]
    pending: list[PendingSnapshot]


class DialogSet(msgspec.Struct, frozen=True, tag=True):
    call_id: str
    server_uid: int
    phase: str
    ttl: float


class DialogRemoved(msgspec.Struct, frozen=True, tag=True):
    call_id: str


class ServerStateSet(msgspec.Struct, frozen=True, tag=True):
    server_uid: int
    state: str


Delta = DialogSet | DialogRemoved | ServerStateSet

SNAPSHOT_VERSION = 1


class DispatcherState:
    """The tables (see the module docstring) and every mutation that does load accounting."""

    __slots__ = (
        "_dialog_wheel",
        "_pending_wheel",
        "_swept",
        "deltas",
        "dialogs",
        "journal",
        "next_uid",
        "pending",
        "servers",
    )

    def __init__(self) -> None:
        self.servers: dict[int, Server] = {}
        self.dialogs: dict[str, Dialog] = {}
        self.pending: dict[str | bytes, Pending] = {}
        self.next_uid = 1
        self.journal = False
        self.deltas: list[Delta] = []
        self._dialog_wheel: dict[int, list[str]] = {}
        self._pending_wheel: dict[int, list[Pending]] = {}
        self._swept = -1

    # -- dialogs --------------------------------------------------------------------------
    def _schedule(self, call_id: str, expires: float) -> None:
        bucket = int(expires)
        lst = self._dialog_wheel.get(bucket)
        if lst is None:
            self._dialog_wheel[bucket] = [call_id]
        else:
            lst.append(call_id)

    def _note(self, call_id: str, d: Dialog, now: float) -> None:
        if self.journal:
            self.deltas.append(DialogSet(call_id, d.server.uid, d.phase.value, d.expires - now))

    def dialog_early(self, call_id: str, server: Server, now: float, ttl: float) -> None:
        """An INVITE went to ``server``: count it pending there (moving it from another)."""
        d = self.dialogs.get(call_id)
        if d is None:
            d = self.dialogs[call_id] = Dialog(server, DialogPhase.EARLY, now + ttl)
            self._schedule(call_id, d.expires)
            server.add_pending(1)
        else:
            self._uncount(d)
            d.server = server
            d.phase = DialogPhase.EARLY
            if d.expires < now + ttl:
                d.expires = now + ttl
                self._schedule(call_id, d.expires)
            server.add_pending(1)
        self._note(call_id, d, now)

    def dialog_touch(self, call_id: str, server: Server, now: float, ttl: float) -> None:
        """A non-INVITE initial request went to ``server``: affinity only, not counted."""
        d = self.dialogs.get(call_id)
        if d is None:
            d = self.dialogs[call_id] = Dialog(server, DialogPhase.IDLE, now + ttl)
            self._schedule(call_id, d.expires)
        elif d.phase is DialogPhase.IDLE:
            d.server = server
            if d.expires < now + ttl:
                d.expires = now + ttl
                self._schedule(call_id, d.expires)
        else:
            return
        self._note(call_id, d, now)

    def dialog_confirmed(self, call_id: str, server: Server, now: float, ttl: float) -> bool:
        """A 2xx to the INVITE came from ``server``; returns False if already confirmed."""
        d = self.dialogs.get(call_id)
        if d is None:
            d = self.dialogs[call_id] = Dialog(server, DialogPhase.CONFIRMED, now + ttl)
        elif d.phase is DialogPhase.CONFIRMED:
            return False
        else:
            self._uncount(d)
            d.server = server
            d.phase = DialogPhase.CONFIRMED
            d.expires = now + ttl
        self._schedule(call_id, d.expires)
        server.add_dialogs(1)
        server.calls_total += 1
        self._note(call_id, d, now)
        return True

    def dialog_move(self, call_id: str, server: Server, now: float) -> None:
        """The server holding this dialog died: it lives on at ``server`` (the shared store
        lets any server end it), keeping its phase and counting there from now on."""
        d = self.dialogs.get(call_id)
        if d is None or d.server is server:
            return
        self._uncount(d)
        d.server = server
        if d.phase is DialogPhase.EARLY:
            server.add_pending(1)
        elif d.phase is DialogPhase.CONFIRMED:
            server.add_dialogs(1)
        self._note(call_id, d, now)

    def dialog_idle(self, call_id: str, now: float, linger: float) -> None:
        """The INVITE failed or the BYE went by: stop counting, keep routing for ``linger``."""
        d = self.dialogs.get(call_id)
        if d is None or d.phase is DialogPhase.IDLE:
            return
        self._uncount(d)
        d.phase = DialogPhase.IDLE
        d.expires = now + linger
        self._schedule(call_id, d.expires)
        self._note(call_id, d, now)

    @staticmethod
    def _uncount(d: Dialog) -> None:
        if d.phase is DialogPhase.EARLY:
            d.server.add_pending(-1)
        elif d.phase is DialogPhase.CONFIRMED:
            d.server.add_dialogs(-1)

    def _remove_dialog(self, call_id: str) -> None:
        d = self.dialogs.pop(call_id, None)
        if d is not None:
            self._uncount(d)
            if self.journal:
                self.deltas.append(DialogRemoved(call_id))

    # -- pending transactions ----------------------------------------------------------------
    def add_pending(self, p: Pending, branch: str | bytes) -> None:
        """Index ``p`` by ``branch`` (one of ours) or by its key (the client's identity)."""
        self.pending[branch] = p
        bucket = int(p.expires)
        lst = self._pending_wheel.get(bucket)
        if lst is None:
            self._pending_wheel[bucket] = [p]
        else:
            lst.append(p)

    def drop_pending(self, p: Pending) -> None:
        pend = self.pending
        if pend.get(p.key) is p:
            del pend[p.key]
        for b in p.branches:
            if pend.get(b) is p:
                del pend[b]
        if p.final:
            # The expiry wheel keeps the object until its bucket comes due (minutes for an
            # INVITE); the request bytes are what weighs, and a finished one needs them no more.
            p.raw = b""
            p.key = b""
            p.branches.clear()
            p.responded.clear()

    # -- expiry ---------------------------------------------------------------------------
    def sweep(self, now: float) -> tuple[int, list[Pending]]:
        """Expire due dialogs and pending transactions.

        Returns the number of dialogs removed and the pending transactions that expired with
        no final response (the router releases their load).
        """
        second = int(now)
        removed = 0
        expired: list[Pending] = []
        start = self._swept + 1 if self._swept >= 0 else min(
            [*self._dialog_wheel, *self._pending_wheel, second]
        )
        for bucket in range(start, second):
            for call_id in self._dialog_wheel.pop(bucket, ()):
                d = self.dialogs.get(call_id)
                if d is not None and d.expires <= now:
                    self._remove_dialog(call_id)
                    removed += 1
            for p in self._pending_wheel.pop(bucket, ()):
                if p.expires <= now and self.pending.get(p.key) is p:
                    self.drop_pending(p)
                    if not p.final:
                        expired.append(p)
        self._swept = second - 1
        return removed, expired

    # -- replication ----------------------------------------------------------------------
    def drain_deltas(self) -> list[Delta]:
        out = self.deltas
        self.deltas = []
        return out

    def snapshot(self, now: float) -> StateSnapshot:
        servers = [
            ServerSnapshot(
                s.uid, s.id, s.uri, s.dest.weight, s.dest.priority, s.dest.maxload, s.probing,
                s.state.value, s.pending, s.dialogs,
            )
            for s in self.servers.values()
        ]
        dialogs = [
            DialogSnapshot(cid, d.server.uid, d.phase.value, d.expires - now)
            for cid, d in self.dialogs.items()
        ]
        seen: set[int] = set()
        pending = []
        for p in self.pending.values():
            if id(p) in seen:
                continue
            seen.add(id(p))
            pending.append(
                PendingSnapshot(
                    p.key, p.raw, (p.source.transport, p.source.host, p.source.port), p.call_id,
                    p.method, [s.uid for s in p.attempts], list(p.branches),
                    list(p.responded), p.deadline - now if p.deadline else 0.0, p.final,
                    None if p.winner is None else p.winner.uid, p.expires - now,
                )
            )
        return StateSnapshot(SNAPSHOT_VERSION, self.next_uid, servers, dialogs, pending)

    def apply(self, snap: StateSnapshot, now: float) -> None:
        """Load dialogs, pending transactions and health from ``snap``.

        Servers are matched by uid and must already exist (configuration is loaded from the
        same config on both sides); entries naming an unknown server are skipped.
        Raises ValueError for a snapshot of another version.
        """
        from sipha.transport import Peer

        if snap.version != SNAPSHOT_VERSION:
            raise ValueError(f"state snapshot version {snap.version}, expected {SNAPSHOT_VERSION}")
        servers = self.servers
        for s in servers.values():
            s.pending = 0
            s.dialogs = 0
            s.dest.active_calls = 0
        for ss in snap.servers:
            server = servers.get(ss.uid)
            if server is not None:
                server.health.state = HealthState(ss.state)
        self.next_uid = max(self.next_uid, snap.next_uid)
        self.dialogs.clear()
        self._dialog_wheel.clear()
        for ds in snap.dialogs:
            server = servers.get(ds.server_uid)
            if server is None:
                continue
            phase = DialogPhase(ds.phase)
            d = self.dialogs[ds.call_id] = Dialog(server, phase, now + ds.ttl)
            self._schedule(ds.call_id, d.expires)
            if phase is DialogPhase.EARLY:
                server.add_pending(1)
            elif phase is DialogPhase.CONFIRMED:
                server.add_dialogs(1)
        self.pending.clear()
        self._pending_wheel.clear()
        for ps in snap.pending:
            attempts = [servers[u] for u in ps.attempts if u in servers]
            if len(attempts) != len(ps.attempts) or not ps.branches:
                continue
            p = Pending(
                ps.key, ps.raw, Peer(*ps.source), ps.call_id, ps.method, now + ps.ttl
            )
            p.attempts = attempts
            p.branches = list(ps.branches)
            p.responded = list(ps.responded)
            p.deadline = now + ps.deadline_in if ps.deadline_in else 0.0
            p.final = ps.final
            p.winner = servers.get(ps.winner_uid) if ps.winner_uid is not None else None
            self.add_pending(p, p.key)
            for b in p.branches:
                self.pending[b] = p
        self._swept = -1

    def apply_delta(self, delta: Delta, now: float) -> None:
        """Replay one journaled change (unknown servers are ignored)."""
        if isinstance(delta, DialogRemoved):
            self._remove_dialog(delta.call_id)
            return
        if isinstance(delta, ServerStateSet):
            server = self.servers.get(delta.server_uid)
            if server is not None:
                server.health.state = HealthState(delta.state)
            return
        server = self.servers.get(delta.server_uid)
        if server is None:
            return
        old = self.dialogs.get(delta.call_id)
        if old is not None:
            self._uncount(old)
        phase = DialogPhase(delta.phase)
        d = self.dialogs[delta.call_id] = Dialog(server, phase, now + delta.ttl)
        self._schedule(delta.call_id, d.expires)
        if phase is DialogPhase.EARLY:
            server.add_pending(1)
        elif phase is DialogPhase.CONFIRMED:
            server.add_dialogs(1)
