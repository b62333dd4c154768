"""A virtual-time world for two `Membership` machines: a lossy network, fencing, an address.

Fencing kills the peer (SIGKILL), which also ends a stopped node; acquiring succeeds only when
nobody holds the address (as binding or `ip addr add` of a held address does not). The
replication stream is modelled by its end only: when an active node dies its kernel closes
the stream, and the peer hears `replication_lost` one latency later; `cut_stream` breaks it
while the active lives (a middlebox's reset), the false alarm fast detection must survive.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from sipha.ha.membership import (
    Acquire,
    Action,
    Failback,
    Fence,
    Membership,
    MembershipSettings,
    PeerStatus,
    Release,
    Role,
    SendHeartbeat,
)

LATENCY = 0.001


@dataclass
class Node:
    name: str
    priority: int
    m: Membership
    pid: int
    alive: bool = True
    stopped: bool = False
    drop_outgoing: bool = False
    acquiring: bool = False
    incarnation: int = 0


@dataclass
class World:
    failback: Failback = Failback.STICKY
    now: float = 0.0
    nodes: dict[str, Node] = field(default_factory=dict)
    owner: str | None = None
    queue: list[tuple[float, int, str, PeerStatus | None]] = field(default_factory=list)
    """Heartbeats in flight; None: the end of the replication stream reaching ``dest``."""
    pids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    seq: itertools.count[int] = field(default_factory=itertools.count)
    violations: list[str] = field(default_factory=list)

    def settings(self, name: str, priority: int) -> MembershipSettings:
        return MembershipSettings(node_id=name, priority=priority, failback=self.failback)

    def start(self, name: str, priority: int) -> None:
        old = self.nodes.get(name)
        inc = old.incarnation + 1 if old else 0
        node = Node(name, priority, Membership(self.settings(name, priority), self.now),
                    next(self.pids), incarnation=inc)
        self.nodes[name] = node
        self.run(node, node.m.handle_timer(self.now))

    def other(self, name: str) -> Node:
        return next(n for k, n in self.nodes.items() if k != name)

    def running(self, node: Node) -> bool:
        return node.alive and not node.stopped

    def run(self, node: Node, actions: list[Action]) -> None:
        for a in actions:
            if not self.running(node):
                return
            if isinstance(a, SendHeartbeat):
                if not node.drop_outgoing and len(self.nodes) == 2:
                    st = node.m.status()
                    st = PeerStatus(st.node_id, st.priority, st.role, st.term, node.pid,
                                    st.held, node.incarnation)
                    heapq.heappush(self.queue, (self.now + LATENCY, next(self.seq),
                                                self.other(node.name).name, st))
            elif isinstance(a, Fence):
                peer = self.other(node.name)
                if peer.pid == a.pid:
                    self.kill(peer.name)
                self.run(node, node.m.fence_done(True, self.now, "killed"))
            elif isinstance(a, Acquire):
                node.acquiring = True
                self.try_acquire(node)
            elif isinstance(a, Release):
                node.acquiring = False
                if self.owner == node.name:
                    self.owner = None
                self.run(node, node.m.address_released(self.now))
        self.check()

    def try_acquire(self, node: Node) -> None:
        if node.acquiring and self.running(node) and self.owner in (None, node.name):
            self.owner = node.name
            node.acquiring = False
            self.run(node, node.m.address_acquired(self.now))

    def kill(self, name: str) -> None:
        node = self.nodes[name]
        if node.alive and node.m.role is Role.ACTIVE:
            self.cut_stream(name)  # its kernel closes the standby's stream at once
        node.alive = False
        node.acquiring = False
        if self.owner == name:
            self.owner = None  # the kernel closes its sockets

    def cut_stream(self, name: str) -> None:
        """The replication stream from ``name`` (if active) to its peer ends."""
        if len(self.nodes) == 2 and self.nodes[name].m.role is Role.ACTIVE:
            heapq.heappush(self.queue, (self.now + LATENCY, next(self.seq),
                                        self.other(name).name, None))

    def check(self) -> None:
        active = [n.name for n in self.nodes.values() if n.alive and n.m.role is Role.ACTIVE]
        if len(active) > 1:
            self.violations.append(f"t={self.now:.3f}: two actives {active}")
        for name in active:
            if self.owner != name:
                self.violations.append(f"t={self.now:.3f}: {name} active without the address")

    def advance(self, dt: float) -> None:
        end = self.now + dt
        while True:
            t_msg = self.queue[0][0] if self.queue else float("inf")
            running = [n for n in self.nodes.values() if self.running(n)]
            t_timer = min((n.m.next_deadline() for n in running), default=float("inf"))
            t = min(t_msg, t_timer)
            if t > end:
                break
            self.now = max(self.now, t)
            if t_msg <= t_timer:
                _, _, dest, status = heapq.heappop(self.queue)
                node = self.nodes[dest]
                if self.running(node) and status is None:
                    self.run(node, node.m.replication_lost(self.now))
                elif self.running(node) and status is not None:
                    self.run(node, node.m.heartbeat_received(status, self.now))
            else:
                for n in running:
                    if n.m.next_deadline() <= self.now:
                        self.run(n, n.m.handle_timer(self.now))
            for n in self.nodes.values():
                self.try_acquire(n)
        self.now = end

    def actives(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.alive and n.m.role is Role.ACTIVE]
