"""Who holds the service address: the membership state machine of an active/standby pair.

Theory of operation
-------------------
Two dispatcher nodes form a pair. Each announces itself every ``heartbeat_interval`` (100 ms)
with its role, priority, term and PID; a peer not heard for ``token`` (300 ms) is *lost*.
This module is pure: heartbeats, completions of the service's work (a fence, taking or
releasing the address), operator commands and ``now`` come in; `Action` values go out, and
`next_deadline()` says when `handle_timer()` has work. The asyncio layer (`ha.service`) only
sends, runs the actions and re-arms one timer.

Roles (`Role`) and the address:

* ``STARTING``: waiting up to ``startup_wait`` to hear the peer before deciding;
* ``STANDBY``: holds nothing, follows the active's replicated state;
* ``FENCING``: the peer was lost while it may hold the address; it is being fenced (SIGKILL
  of its PID in local mode, a fence command elsewhere, like Pacemaker's STONITH). The address
  is never taken before the fence reports success: that is what prevents split brain;
* ``CLAIMING``: the peer is alive and holds the address, and we want it (``preempt`` failback
  or an operator's promote): our heartbeats ask it to release, we wait for it to turn idle;
* ``ACQUIRING``: taking the address (the service binds / adds it, retrying until done);
* ``ACTIVE``: holds the address and forwards;
* ``RELEASING``: giving the address up (operator demote, or the peer claims it).

Inputs are the `Input` values. A peer heartbeat is classified into one of the ``PEER_*``
inputs by comparing *ranks*: ``(not held, priority, node_id)``, higher wins; a node that was
demoted by an operator or yielded to a claim is *held* and ranks below any node that is not,
so it does not take the address straight back. Two nodes that both believe they are active
(possible only if a fence lied) settle by ``(term, rank)``: every promotion takes a term above
any it has seen, and the older term releases.

`TABLE` (in `ha.table`) maps every (role, input) pair to (actions, next role); a test walks
all pairs. The pseudo-role `TAKE_OVER` resolves by what we last knew of the peer: lost while
it might hold the address -> ``FENCING``; alive and holding it -> ``CLAIMING``; otherwise ->
``ACQUIRING``.
Peer loss is a level, not an edge: `handle_timer` feeds ``PEER_LOST`` to the roles that act on
it for as long as the peer stays silent, so a node that just finished releasing still notices.

Fast detection across hosts: a crashed process's kernel closes its TCP connections at once,
and the standby keeps one to the active (the replication stream). `replication_lost` reports
that the active's side ended it (EOF, reset, or a refused reconnect: nobody listens there any
more). That alone is no proof (a releasing active closes the stream too, after announcing
``RELEASING``), so the loss becomes ``PEER_CRASHED`` only if the peer's heartbeat then stays
silent for ``crash_confirm`` (a heartbeat from a live peer cancels the suspicion). A hung
(SIGSTOPped) or cut-off host keeps its connection open or silent: the token still judges it.
``PEER_CRASHED`` leads where ``PEER_LOST`` does, through fencing: a wrong suspicion costs a
fenced active, never two actives.
"""

from __future__ import annotations

from dataclasses import dataclass

from .table import (
    HOLDING_ROLES,
    IDLE_ROLES,
    SAME,
    TABLE,
    TAKE_OVER,
    Do,
    Failback,
    Input,
    Next,
    Role,
)

__all__ = [
    "SAME",
    "TABLE",
    "TAKE_OVER",
    "Acquire",
    "Action",
    "Do",
    "Failback",
    "Fence",
    "Input",
    "Membership",
    "MembershipSettings",
    "Next",
    "PeerStatus",
    "Release",
    "Role",
    "RoleChanged",
    "SendHeartbeat",
    "outranks",
]



# --- events in, actions out -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """What a peer's heartbeat says about it (decoded by `ha.heartbeat`)."""

    node_id: str
    priority: int
    role: Role
    term: int
    pid: int
    held: bool = False
    incarnation: int = 0
    """Changes when the peer process restarts (its start time); a new one resets our view."""


@dataclass(frozen=True, slots=True)
class SendHeartbeat:
    """Action: announce our status to the peer now (periodic, and on every role change)."""


@dataclass(frozen=True, slots=True)
class Fence:
    """Action: make sure the peer holds nothing (kill its PID, or run the fence command);
    report with `Membership.fence_done`."""

    node_id: str
    pid: int


@dataclass(frozen=True, slots=True)
class Acquire:
    """Action: take the address, retrying until done; report `address_acquired`."""

    term: int


@dataclass(frozen=True, slots=True)
class Release:
    """Action: stop forwarding, flush replication, give the address up; report
    `address_released`."""


Action = SendHeartbeat | Fence | Acquire | Release


@dataclass(frozen=True, slots=True)
class RoleChanged:
    """A role change with its cause (logged and shown by the API)."""

    old: Role
    new: Role
    cause: str
    at: float


@dataclass(frozen=True, slots=True)
class MembershipSettings:
    node_id: str
    priority: int = 100
    heartbeat_interval: float = 0.1
    token: float = 0.3
    """Silence after which the peer is lost (Corosync's token)."""
    startup_wait: float | None = None
    """How long a starting node listens for the peer before acting alone (default: token)."""
    failback: Failback = Failback.STICKY
    fence_retry: float = 0.5
    claim_timeout: float = 2.0
    automatic: bool = True
    """False in ``external`` mode: only operator commands move the role (keepalived decides)."""
    replicated: bool = True
    """False when the pair shares no state (the paper's Pacemaker): nothing to catch up with
    before preempting."""
    crash_confirm: float = 0.02
    """After the replication stream was lost, how long the peer's heartbeat must stay silent
    for the peer to count as crashed (0: off, only the token judges)."""

    def __post_init__(self) -> None:
        if self.heartbeat_interval <= 0 or self.token <= self.heartbeat_interval:
            raise ValueError("need 0 < heartbeat_interval < token")
        if not 0 <= self.crash_confirm < self.token:
            raise ValueError("need 0 <= crash_confirm < token")


def outranks(a: tuple[bool, int, str], b: tuple[bool, int, str]) -> bool:
    """Rank order: a node that is not held beats one that is, then priority, then node id."""
    return (not a[0], a[1], a[2]) > (not b[0], b[1], b[2])


class Membership:
    """One node's view of the pair (see the module docstring).

    Raises ValueError for a heartbeat that claims our own node id (misconfiguration).
    """

    __slots__ = (
        "_claim_deadline",
        "_fence_retry_at",
        "_next_heartbeat",
        "_peer_heard",
        "_startup_until",
        "_stream_lost_at",
        "caught_up",
        "changes",
        "held",
        "peer",
        "peer_lost",
        "role",
        "settings",
        "term",
    )

    def __init__(self, settings: MembershipSettings, now: float) -> None:
        self.settings = settings
        self.role = Role.STARTING
        self.term = 0
        self.held = False
        self.caught_up = False
        """Set by replication once the standby applied a snapshot (gates preempt)."""
        self.peer: PeerStatus | None = None
        self.peer_lost = False
        self.changes: list[RoleChanged] = []
        self._peer_heard = -1.0
        wait = settings.startup_wait if settings.startup_wait is not None else settings.token
        self._startup_until = now + wait
        self._next_heartbeat = now
        self._fence_retry_at = float("inf")
        self._claim_deadline = float("inf")
        self._stream_lost_at = float("inf")
        if not settings.automatic:
            self.role = Role.STANDBY
            self._startup_until = float("inf")

    # -- queries ------------------------------------------------------------------------------
    @property
    def rank(self) -> tuple[bool, int, str]:
        return (self.held, self.settings.priority, self.settings.node_id)

    def peer_alive(self, now: float) -> bool:
        # Compared with the same sum next_deadline() reports, so the timer never spins.
        return self.peer is not None and not self.peer_lost and (
            now < self._peer_heard + self.settings.token
        )

    def status(self) -> PeerStatus:
        """Our own status, as the heartbeat announces it."""
        return PeerStatus(
            self.settings.node_id, self.settings.priority, self.role, self.term, 0, self.held
        )

    def next_deadline(self) -> float:
        deadlines = [self._next_heartbeat, self._fence_retry_at, self._claim_deadline]
        if self.role is Role.STARTING:
            deadlines.append(self._startup_until)
        if self.peer is not None and not self.peer_lost and self.settings.automatic:
            deadlines.append(self._peer_heard + self.settings.token)
            deadlines.append(self._stream_lost_at + self.settings.crash_confirm)
        return min(deadlines)

    # -- inputs -------------------------------------------------------------------------------
    def heartbeat_received(self, peer: PeerStatus, now: float) -> list[Action]:
        """A heartbeat from the peer arrived."""
        if peer.node_id == self.settings.node_id:
            raise ValueError(f"heartbeat from our own node id {peer.node_id!r}")
        old = self.peer
        if old is not None and old.incarnation != peer.incarnation:
            self.caught_up = False  # a restarted peer: our replica link restarts too
        self.peer = peer
        self._peer_heard = now
        self._stream_lost_at = float("inf")  # it spoke: alive, whatever its stream did
        if self.peer_lost:
            self.peer_lost = False
        self.term = max(self.term, peer.term) if self.role is not Role.ACTIVE else self.term
        return self._apply(self._classify(peer), now)

    def peer_exited(self, now: float) -> list[Action]:
        """The peer's process is known to be gone (local mode watches its PID)."""
        if self.peer is None or self.peer_lost:
            return []
        self.peer_lost = True
        return self._apply(Input.PEER_LOST, now, "peer process exited")

    def replication_lost(self, now: float) -> list[Action]:
        """The peer's side ended our replication stream (EOF, reset, refused reconnect).

        Counts only while the peer was last heard active (a releasing one closes it on
        purpose) and fast detection is on; the timer then waits ``crash_confirm`` for a
        heartbeat before feeding ``PEER_CRASHED`` (see the module docstring)."""
        peer = self.peer
        if (
            self.settings.crash_confirm > 0
            and peer is not None
            and peer.role is Role.ACTIVE
            and not self.peer_lost
            and self._stream_lost_at == float("inf")
        ):
            self._stream_lost_at = now
        return []

    def fence_done(self, ok: bool, now: float, detail: str = "") -> list[Action]:
        if ok:
            self._fence_retry_at = float("inf")
            self.peer_lost = True
            return self._apply(Input.FENCE_SUCCEEDED, now, detail)
        if self.role is Role.FENCING:
            self._fence_retry_at = now + self.settings.fence_retry
        return self._apply(Input.FENCE_FAILED, now, detail)

    def address_acquired(self, now: float) -> list[Action]:
        return self._apply(Input.ADDRESS_ACQUIRED, now)

    def address_released(self, now: float) -> list[Action]:
        return self._apply(Input.ADDRESS_RELEASED, now)

    def promote_requested(self, now: float) -> list[Action]:
        self.held = False
        return self._apply(Input.PROMOTE_REQUESTED, now)

    def demote_requested(self, now: float) -> list[Action]:
        self.held = True
        return self._apply(Input.DEMOTE_REQUESTED, now)

    def handle_timer(self, now: float) -> list[Action]:
        out: list[Action] = []
        auto = self.settings.automatic
        if auto and self.peer is not None and not self.peer_lost and not self.peer_alive(now):
            self.peer_lost = True
        if (
            auto and not self.peer_lost
            and now >= self._stream_lost_at + self.settings.crash_confirm
        ):
            self._stream_lost_at = float("inf")
            self.peer_lost = True
            if self.role in _CRASH_ROLES:
                out += self._apply(Input.PEER_CRASHED, now, "no heartbeat since the stream ended")
        if auto and self.role is Role.STARTING and now >= self._startup_until:
            out += self._apply(
                Input.PEER_LOST if self.peer_lost else Input.STARTUP_WAIT_ENDED, now
            )
        if auto and self.peer_lost and self.role in (Role.STANDBY, Role.CLAIMING):
            out += self._apply(Input.PEER_LOST, now)
        if self.role is Role.FENCING and now >= self._fence_retry_at:
            self._fence_retry_at = float("inf")
            out.append(self._fence_action())
        if self.role is Role.CLAIMING and now >= self._claim_deadline:
            out += self._apply(Input.CLAIM_TIMED_OUT, now)
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.settings.heartbeat_interval
            out.append(SendHeartbeat())
        return out

    # -- the machine --------------------------------------------------------------------------
    def _classify(self, peer: PeerStatus) -> Input:
        peer_rank = (peer.held, peer.priority, peer.node_id)
        if peer.role in (Role.CLAIMING, Role.FENCING):
            return Input.PEER_CLAIMING
        if peer.role in IDLE_ROLES:
            return (
                Input.PEER_IDLE_WE_LEAD
                if outranks(self.rank, peer_rank)
                else Input.PEER_IDLE_PEER_LEADS
            )
        # The peer holds (or is taking) the address.
        if self.role is Role.ACTIVE:
            ours = (self.term, not self.held, self.settings.priority, self.settings.node_id)
            theirs = (peer.term, not peer.held, peer.priority, peer.node_id)
            return Input.PEER_HOLDING if theirs > ours else Input.PEER_HOLDING_LOSES
        if (
            self.settings.failback is Failback.PREEMPT
            and peer.role is Role.ACTIVE
            and (self.caught_up or not self.settings.replicated)
            and not self.held
            and self.settings.priority > peer.priority
        ):
            return Input.PEER_HOLDING_PREEMPTIBLE
        return Input.PEER_HOLDING

    def _apply(self, event: Input, now: float, detail: str = "") -> list[Action]:
        if not self.settings.automatic and event not in _EXTERNAL_INPUTS:
            return []
        dos, nxt = TABLE[(self.role, event)]
        if event in (Input.PEER_LOST, Input.PEER_CRASHED) and self.held:
            self.held = False  # nobody else is left to hold the address
        target = self._resolve(nxt)
        out: list[Action] = []
        for do in dos:
            if do is Do.ACQUIRE:
                out.append(self._acquire_action())
            elif do is Do.RELEASE:
                out.append(Release())
            else:
                out.append(self._fence_action())
        if target is None or target is self.role:
            return out
        old = self.role
        self.role = target
        self._claim_deadline = float("inf")
        self._fence_retry_at = float("inf")
        if target is Role.FENCING:
            out.append(self._fence_action())
        elif target is Role.ACQUIRING and not any(isinstance(a, Acquire) for a in out):
            out.append(self._acquire_action())
        elif target is Role.CLAIMING:
            self._claim_deadline = now + self.settings.claim_timeout
        if event is Input.PEER_CLAIMING and old in (Role.ACTIVE, Role.ACQUIRING):
            self.held = True  # we yielded to a claim: do not claim straight back
        cause = event.value if not detail else f"{event.value}: {detail}"
        self.changes.append(RoleChanged(old, target, cause, now))
        self._next_heartbeat = now  # tell the peer at once
        out.append(SendHeartbeat())
        return out

    def _resolve(self, nxt: Next) -> Role | None:
        if nxt is SAME:
            return None
        if nxt is not TAKE_OVER:
            assert isinstance(nxt, Role)
            return nxt
        peer = self.peer
        if peer is None or not self.settings.automatic:
            return Role.ACQUIRING  # nobody heard, or keepalived already moved the address
        if self.peer_lost:
            return Role.ACQUIRING if peer.role in IDLE_ROLES else Role.FENCING
        return Role.CLAIMING if peer.role in HOLDING_ROLES else Role.ACQUIRING

    def _acquire_action(self) -> Acquire:
        peer_term = self.peer.term if self.peer is not None else 0
        self.term = max(self.term, peer_term) + 1
        return Acquire(self.term)

    def _fence_action(self) -> Fence:
        peer = self.peer
        assert peer is not None, "fencing needs a peer"
        return Fence(peer.node_id, peer.pid)


_CRASH_ROLES = frozenset({Role.STARTING, Role.STANDBY, Role.CLAIMING})
"""Roles whose table acts on ``PEER_CRASHED`` (the others already act or hold)."""

_EXTERNAL_INPUTS = frozenset(
    {
        Input.PROMOTE_REQUESTED,
        Input.DEMOTE_REQUESTED,
        Input.ADDRESS_ACQUIRED,
        Input.ADDRESS_RELEASED,
        Input.FENCE_SUCCEEDED,
        Input.FENCE_FAILED,
    }
)
"""In external mode keepalived/Pacemaker decide; only commands and completions count."""
