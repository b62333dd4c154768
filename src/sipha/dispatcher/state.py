"""Everything a dispatcher remembers, in one place, so a standby can copy it.

Theory of operation
-------------------
Three tables hold all replicable state:

* ``servers``: one `Server` per SIP server (configuration, health, load counters), by uid;
* ``dialogs``: the Call-ID affinity table, Call-ID -> `Dialog` (server, phase, expiry). It routes
  in-dialog requests that carry no Route (SIPp's ``uac`` sends its ACK and BYE to the service
  address) and keeps a call's later transactions (a re-INVITE after a 401) on its server;
* ``transactions``: open initial-request transactions (`transactions.TransactionTable`, which
  owns their failover deadlines and expiry), by the caller's key and each branch we sent them
  with, so a response, a retransmission, an ACK or a CANCEL finds its transaction.

Load accounting happens only in the methods here: a server's ``active_calls`` (read by the
``lc``/``wlc``/``cl``... schedulers) is its pending INVITEs plus its confirmed dialogs. A
scheduler that declares it (``wants_call_events``) is also told through its hooks: every call
counted on a server is one ``on_call_started(dest=...)``, every call that stops counting there
one ``on_call_ended(dest=...)`` (``calls``, set by the registry), so what it counts from its
hooks always equals ``active_calls``.

Dialog expiry uses a one-second wheel (dict of second -> list of keys): appending a key costs
one list append, and a sweep visits only the buckets that have come due, so 100,000 held
dialogs cost no periodic scan. An entry whose expiry moved later is simply skipped when its old
bucket comes due; the later bucket holds it too.

`snapshot()` exports everything as typed structs (`replicated`) with times relative to ``now``
(monotonic clocks differ between hosts) and `apply()` loads one. With ``journal`` on, every
dialog, health and transaction change is also appended to a list of typed deltas that
`drain_deltas()` hands out and `apply_delta()` replays: the HA layer streams those to its
standby.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from .health import HealthSettings, HealthState, ServerHealth
from .replicated import (
    SNAPSHOT_VERSION,
    Delta,
    DialogRemoved,
    DialogSet,
    DialogSnapshot,
    ServerSnapshot,
    ServerStateSet,
    StateSnapshot,
)
from .schedulers import CallEvents, Destination
from .transactions import Pending, TransactionRemoved, TransactionSet, TransactionTable

if TYPE_CHECKING:
    from sipha.transport import Peer

__all__ = [
    "Delta",
    "Dialog",
    "DialogPhase",
    "DialogRemoved",
    "DialogSet",
    "DispatcherState",
    "Pending",
    "Server",
    "ServerStateSet",
    "StateSnapshot",
    "TransactionRemoved",
    "TransactionSet",
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
        "resolved",
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
        self.resolved = True
        """False while the server's name has no address yet (`destinations`): never used."""

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


class DispatcherState:
    """The tables (see the module docstring) and every mutation that does load accounting."""

    __slots__ = (
        "_dialog_wheel",
        "_swept",
        "calls",
        "deltas",
        "dialogs",
        "journal",
        "next_uid",
        "servers",
        "transactions",
    )

    def __init__(self) -> None:
        self.servers: dict[int, Server] = {}
        self.dialogs: dict[str, Dialog] = {}
        self.transactions = TransactionTable()
        self.next_uid = 1
        self.journal = False
        self.deltas: list[Delta] = []
        self._dialog_wheel: dict[int, list[str]] = {}
        self._swept = -1
        self.calls: CallEvents | None = None
        """The scheduler's call hooks, when it wants them (see the module docstring)."""

    @property
    def pending(self) -> dict[str | bytes, Pending]:
        """Open transactions by key and by branch (the table's index)."""
        return self.transactions.index

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
        else:
            self._uncount(d)
            d.server = server
            d.phase = DialogPhase.EARLY
            if d.expires < now + ttl:
                d.expires = now + ttl
                self._schedule(call_id, d.expires)
        server.add_pending(1)  # _count(d), inline: every INVITE passes here
        if self.calls is not None:
            self.calls.on_call_started(dest=server.dest)
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
        server.add_dialogs(1)  # _count(d), inline: every answered call passes here
        if self.calls is not None:
            self.calls.on_call_started(dest=server.dest)
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
        self._count(d)
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

    def _uncount(self, d: Dialog) -> None:
        if d.phase is DialogPhase.EARLY:
            d.server.add_pending(-1)
        elif d.phase is DialogPhase.CONFIRMED:
            d.server.add_dialogs(-1)
        else:
            return
        if self.calls is not None:
            self.calls.on_call_ended(dest=d.server.dest)

    def _count(self, d: Dialog) -> None:
        if d.phase is DialogPhase.EARLY:
            d.server.add_pending(1)
        elif d.phase is DialogPhase.CONFIRMED:
            d.server.add_dialogs(1)
        else:
            return
        if self.calls is not None:
            self.calls.on_call_started(dest=d.server.dest)

    def _remove_dialog(self, call_id: str) -> None:
        d = self.dialogs.pop(call_id, None)
        if d is not None:
            self._uncount(d)
            if self.journal:
                self.deltas.append(DialogRemoved(call_id))

    # -- expiry ---------------------------------------------------------------------------
    def sweep(self, now: float) -> int:
        """Expire due dialogs; returns how many were removed (transactions expire by their
        own table)."""
        second = int(now)
        removed = 0
        start = self._swept + 1 if self._swept >= 0 else min([*self._dialog_wheel, second])
        for bucket in range(start, second):
            for call_id in self._dialog_wheel.pop(bucket, ()):
                d = self.dialogs.get(call_id)
                if d is not None and d.expires <= now:
                    self._remove_dialog(call_id)
                    removed += 1
        self._swept = second - 1
        return removed

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
        pending = self.transactions.snapshot(now)
        return StateSnapshot(SNAPSHOT_VERSION, self.next_uid, servers, dialogs, pending)

    def apply(self, snap: StateSnapshot, now: float) -> None:
        """Load dialogs, pending transactions and health from ``snap``.

        Servers are matched by uid and must already exist (configuration is loaded from the
        same config on both sides); entries naming an unknown server are skipped.
        Raises ValueError for a snapshot of another version.
        """
        if snap.version != SNAPSHOT_VERSION:
            raise ValueError(f"state snapshot version {snap.version}, expected {SNAPSHOT_VERSION}")
        servers = self.servers
        for d in self.dialogs.values():
            self._uncount(d)  # every call counted here ends; the snapshot's start
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
            self._count(d)
        self.transactions.apply(snap.pending, servers, now)
        self._swept = -1

    def apply_delta(self, delta: Delta, now: float) -> None:
        """Replay one journaled change (unknown servers are ignored)."""
        if now >= self._swept + 2:
            # Once a second: the standby's expiry upkeep, which its timer does not do.
            self.sweep(now)
            self.transactions.prune(now)
        if isinstance(delta, TransactionSet | TransactionRemoved):
            self.transactions.apply_delta(delta, self.servers, now)
            return
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
        self._count(d)
