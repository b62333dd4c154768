"""The asyncio side of HA: heartbeats, one timer, fencing, the address and replication.

`HaNode` feeds the pure `Membership` (heartbeats in, timer, completions) and carries out the
actions it returns. It drives the dispatcher through the small `Forwarder` protocol
(`DispatcherForwarder` adapts `DispatcherService`): bind or unbind the service sockets (local
mode), switch forwarding work on or off, expose its state for replication.

Takeover timing is measured from the nodes' own clocks: the active streams the wall-clock time
of its last forwarded message with every replication batch, and the new active notes the time
of its first forwarded message after it took the address; ``GET /ha`` shows both and the gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from sipha.common.http import HttpApi, parse_host_port

from .address import AddressMode, AddressOwner, ExternalAddress, IpAddress, LocalAddress
from .config import HaConfig
from .fence import CommandFencer, Fencer, NoFencer, PidFencer, PidWatcher
from .heartbeat import PROTOCOL_VERSION, Heartbeat, HeartbeatCodec, HeartbeatError
from .membership import (
    Acquire,
    Action,
    Fence,
    Membership,
    MembershipSettings,
    Release,
    Role,
    SendHeartbeat,
)
from .replication import ReplicableState, ReplicationSink, ReplicationSource

__all__ = ["Forwarder", "HaNode"]

log = logging.getLogger("sipha.ha")


class Forwarder(Protocol):
    """What HA needs from the dispatcher process."""

    @property
    def state(self) -> ReplicableState: ...
    async def bind(self) -> None:
        """Bind the service sockets (raises OSError while the address is taken)."""
    async def unbind(self) -> None: ...
    def set_active(self, active: bool) -> None:
        """Start or stop the active's own work (probes, failover timers)."""
    def set_after_batch(self, hook: Callable[[], None] | None) -> None:
        """Call ``hook`` after each batch of forwarded messages."""


class HaNode:
    """One node of the pair (see the module docstring)."""

    def __init__(self, cfg: HaConfig, forwarder: Forwarder, *, api: str = "") -> None:
        self.cfg = cfg
        self.forwarder = forwarder
        self.api_address = api
        self.mode = cfg.address_mode
        self.incarnation = time.time_ns() // 1_000_000
        self.listen = parse_host_port(cfg.listen, what="ha listen")
        self.peer_addr = parse_host_port(cfg.peer, what="ha peer")
        self.codec = HeartbeatCodec(cfg.cluster, cfg.key.encode() if cfg.key else None)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.membership: Membership | None = None
        self.address: AddressOwner = self._address_owner()
        self.fencer: Fencer = (
            NoFencer() if cfg.fence_command == "none"
            else CommandFencer(cfg.fence_command) if cfg.fence_command
            else PidFencer()
        )
        self.watcher = PidWatcher(self._peer_exited)
        self.source: ReplicationSource | None = None
        self.sink: ReplicationSink | None = None
        self.seq = 0
        self.peer_replication_port = 0
        self.bad_heartbeats = 0
        self.takeovers: list[dict[str, Any]] = []
        self.first_forward = 0.0
        self.last_forward = 0.0  # wall time of our last forwarded message (in heartbeats)
        self.peer_last_forward = 0.0  # the peer's, as its heartbeats said
        self._awaiting_first_forward = False
        self._became_active_at = 0.0
        self._sock: socket.socket | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._acquiring: asyncio.Task[None] | None = None
        self._closed = False
        self._role = Role.STARTING

    def _address_owner(self) -> AddressOwner:
        if self.mode is AddressMode.LOCAL:
            return LocalAddress([], self.forwarder.bind, self.forwarder.unbind)
        if self.mode is AddressMode.IP:
            return IpAddress(self.cfg.vip, self.cfg.interface, prefix=self.cfg.prefix)
        return ExternalAddress()

    def set_listen_specs(self, specs: list[Any]) -> None:
        """The service sockets (checked free before each bind in local mode)."""
        if isinstance(self.address, LocalAddress):
            self.address.specs = list(specs)

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        loop = self.loop = asyncio.get_running_loop()
        cfg = self.cfg
        settings = MembershipSettings(
            node_id=cfg.node_id,
            priority=cfg.priority,
            heartbeat_interval=cfg.heartbeat_interval,
            token=cfg.token,
            startup_wait=cfg.startup_wait or None,
            failback=cfg.failback_policy,
            automatic=self.mode is not AddressMode.EXTERNAL,
            replicated=cfg.replicate,
            crash_confirm=cfg.crash_confirm,
        )
        self.membership = Membership(settings, loop.time())
        state = self.forwarder.state
        self.source = ReplicationSource(
            state, cluster=cfg.cluster, node_id=cfg.node_id, host=self.listen[0],
            port=self.listen[1], clock=loop.time, batch_interval=cfg.batch_interval,
        )
        await self.source.start()
        self.sink = ReplicationSink(
            state, cluster=cfg.cluster, clock=loop.time, on_caught_up=self._caught_up,
            on_lost=self._replication_lost,
        )
        # A plain socket read by add_reader, not a DatagramProtocol: the timer drains it before
        # judging the peer, so our own stall (libuv runs timers before polling I/O) is never
        # mistaken for the peer's silence while its heartbeats wait in our buffer.
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(self.listen)
        self._sock = sock
        loop.add_reader(sock.fileno(), self._drain)
        self.forwarder.set_after_batch(self._after_batch)
        log.info("HA node %s (priority %d, %s mode, %s failback) heartbeats %s:%d -> %s:%d",
                 cfg.node_id, cfg.priority, self.mode.value, cfg.failback, *self.listen,
                 *self.peer_addr)
        self._run([SendHeartbeat()])
        self._arm()

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        self.watcher.stop()
        if self.sink is not None:
            self.sink.stop()
        if self.source is not None:
            await self.source.close()
        if self.membership is not None and self.membership.role in (
            Role.ACTIVE, Role.ACQUIRING, Role.RELEASING
        ):
            with contextlib.suppress(OSError):
                await self.address.release()
        if self._sock is not None and self.loop is not None:
            self.loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    # -- inputs -------------------------------------------------------------------------------
    def _now(self) -> float:
        assert self.loop is not None
        return self.loop.time()

    def _drain(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # ICMP unreachable from a dead peer: silence is what the token measures
            self._on_datagram(data, addr)
            sock = self._sock

    def _on_datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        m = self.membership
        if m is None or self._closed:
            return
        if addr[0] != self.peer_addr[0]:
            self.bad_heartbeats += 1
            return
        try:
            hb = self.codec.decode(data)
            actions = m.heartbeat_received(hb.peer_status(), self._now())
        except (HeartbeatError, ValueError) as exc:
            self.bad_heartbeats += 1
            log.debug("bad heartbeat from %s: %s", addr, exc)
            return
        self.peer_replication_port = hb.replication_port
        if hb.last_forward > self.peer_last_forward:
            self.peer_last_forward = hb.last_forward
        if self.mode is AddressMode.LOCAL and hb.pid and self.cfg.watch_pid:
            self.watcher.watch(hb.pid)
        self._run(actions)

    def _peer_exited(self) -> None:
        m = self.membership
        if m is not None and not self._closed:
            log.warning("peer process %s exited", m.peer.pid if m.peer else "?")
            self._run(m.peer_exited(self._now()))

    def _replication_lost(self) -> None:
        m = self.membership
        if m is not None and not self._closed:
            self._run(m.replication_lost(self._now()))

    def _caught_up(self) -> None:
        if self.membership is not None:
            self.membership.caught_up = True

    def promote(self) -> None:
        assert self.membership is not None
        self._run(self.membership.promote_requested(self._now()))

    def demote(self) -> None:
        assert self.membership is not None
        self._run(self.membership.demote_requested(self._now()))

    # -- timer --------------------------------------------------------------------------------
    def _arm(self) -> None:
        if self._closed or self.membership is None or self.loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        deadline = max(self.membership.next_deadline(), self.loop.time() + 0.001)
        self._timer = self.loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._drain()
        if self.membership is not None:
            self._run(self.membership.handle_timer(self._now()))

    # -- actions ------------------------------------------------------------------------------
    def _run(self, actions: list[Action]) -> None:
        m = self.membership
        if m is None or self._closed:
            return
        for action in actions:
            if isinstance(action, SendHeartbeat):
                self._send_heartbeat()
            elif isinstance(action, Fence):
                self._spawn(self._fence(action))
            elif isinstance(action, Acquire):
                self._start_acquire(action)
            elif isinstance(action, Release):
                self._spawn(self._release())
        for change in m.changes:
            log.warning("HA %s: %s -> %s (%s)", self.cfg.node_id, change.old.value,
                        change.new.value, change.cause)
        m.changes.clear()
        if m.role is not self._role:
            before, self._role = self._role, m.role
            self._role_entered(before, m.role)
        self._follow_peer()
        self._arm()

    def _spawn(self, coro: Any) -> None:
        assert self.loop is not None
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send_heartbeat(self) -> None:
        m = self.membership
        if m is None or self._sock is None:
            return
        self.seq += 1
        hb = Heartbeat(
            PROTOCOL_VERSION, self.cfg.cluster, self.cfg.node_id, self.cfg.priority, m.role,
            m.term, os.getpid(), m.held, self.incarnation, self.seq,
            self.source.port if self.source is not None else 0, self.api_address,
            self.last_forward,
        )
        with contextlib.suppress(OSError):
            self._sock.sendto(self.codec.encode(hb), self.peer_addr)

    async def _fence(self, action: Fence) -> None:
        ok, detail = await self.fencer.fence(action.node_id, action.pid)
        (log.warning if ok else log.error)("fence %s: %s", action.node_id, detail)
        assert self.membership is not None
        self._run(self.membership.fence_done(ok, self._now(), detail))

    def _start_acquire(self, action: Acquire) -> None:
        if self._acquiring is not None and not self._acquiring.done():
            return
        self._acquiring = self.loop.create_task(self._acquire(action)) if self.loop else None

    async def _acquire(self, action: Acquire) -> None:
        started = time.time()
        m = self.membership
        sink = self.sink
        if m is not None and sink is not None and sink.target is not None and not m.peer_lost:
            # A handover (the live peer released to our claim): apply its last changes first;
            # it closes the stream right after flushing them.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await sink.ended.wait()
        await self.address.acquire()
        log.warning("HA %s: address %s acquired in %.1f ms (term %d)", self.cfg.node_id,
                    self.cfg.vip, (time.time() - started) * 1000, action.term)
        assert self.membership is not None
        self._run(self.membership.address_acquired(self._now()))

    async def _release(self) -> None:
        if self._acquiring is not None and not self._acquiring.done():
            self._acquiring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._acquiring
        self.forwarder.set_active(False)
        if self.source is not None:
            self.source.deactivate()  # flushes the last changes to the standby
        try:
            await self.address.release()
        except OSError as exc:
            log.error("releasing %s: %s", self.cfg.vip, exc)
        log.warning("HA %s: address %s released", self.cfg.node_id, self.cfg.vip)
        assert self.membership is not None
        self._run(self.membership.address_released(self._now()))

    def _role_entered(self, old: Role, new: Role) -> None:
        m = self.membership
        assert m is not None
        if new is Role.ACTIVE:
            if self.sink is not None:
                self.sink.stop()
            self.forwarder.set_active(True)
            if self.source is not None:
                self.source.activate(m.term)
            self._became_active_at = time.time()
            self._awaiting_first_forward = True

    def _follow_peer(self) -> None:
        m = self.membership
        sink = self.sink
        if m is None or sink is None:
            return
        peer = m.peer
        want = (
            m.role not in (Role.ACTIVE, Role.ACQUIRING)
            and peer is not None
            and not m.peer_lost
            and peer.role is Role.ACTIVE
            and self.peer_replication_port > 0
            and self.cfg.replicate
        )
        if want:
            sink.follow(self.peer_addr[0], self.peer_replication_port)
        elif m.role is Role.ACTIVE:
            sink.stop()

    def _after_batch(self) -> None:
        now = time.time()
        self.last_forward = now
        source = self.source
        if source is not None and source.active:
            source.last_forward = now
            source.kick()
        if self._awaiting_first_forward and self.membership is not None and (
            self.membership.role is Role.ACTIVE
        ):
            self._awaiting_first_forward = False
            self.first_forward = now
            # The replication stream's figure is fresher; the heartbeats' serve a pair that
            # does not replicate (up to a heartbeat interval old).
            streamed = self.sink.peer_last_forward if self.sink is not None else 0.0
            peer_last = max(streamed, self.peer_last_forward)
            record = {
                "became_active": self._became_active_at,
                "first_forward": now,
                "peer_last_forward": peer_last,
                "takeover_ms": round((now - peer_last) * 1000, 3) if peer_last else None,
            }
            self.takeovers.append(record)
            log.warning("HA %s: first message forwarded; takeover %s ms after the peer's last",
                        self.cfg.node_id, record["takeover_ms"])

    # -- API ----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        m = self.membership
        assert m is not None
        peer = m.peer
        return {
            "node_id": self.cfg.node_id,
            "priority": self.cfg.priority,
            "mode": self.mode.value,
            "failback": self.cfg.failback,
            "role": m.role.value,
            "term": m.term,
            "held": m.held,
            "caught_up": m.caught_up,
            "replicate": self.cfg.replicate,
            "vip": self.cfg.vip,
            "pid": os.getpid(),
            "peer": None if peer is None else {
                "node_id": peer.node_id, "role": peer.role.value, "priority": peer.priority,
                "term": peer.term, "pid": peer.pid, "alive": m.peer_alive(self._now()),
            },
            "replication": {
                "batches_sent": self.source.batches_sent if self.source else 0,
                "deltas_sent": self.source.deltas_sent if self.source else 0,
                "snapshots_applied": self.sink.snapshots_applied if self.sink else 0,
                "deltas_applied": self.sink.deltas_applied if self.sink else 0,
                "streams_lost": self.sink.streams_lost if self.sink else 0,
                "peer_last_forward": max(
                    self.sink.peer_last_forward if self.sink else 0.0, self.peer_last_forward
                ),
            },
            "takeovers": self.takeovers,
            "bad_heartbeats": self.bad_heartbeats,
        }

    def add_routes(self, http: HttpApi) -> None:
        async def get_status(request: web.Request) -> web.StreamResponse:
            return web.json_response(self.status())

        async def post_promote(request: web.Request) -> web.StreamResponse:
            self.promote()
            return web.json_response(self.status())

        async def post_demote(request: web.Request) -> web.StreamResponse:
            self.demote()
            return web.json_response(self.status())

        if http.registry is not None:
            http.registry.register(_HaCollector(self))
        http.get("/ha", get_status)
        http.post("/ha/promote", post_promote)
        http.post("/ha/demote", post_demote)


class _HaCollector:
    """HA metrics beside the dispatcher's on its /metrics, for a board that follows a long
    run: role, term, takeovers and the last one's length, the peer, replication."""

    def __init__(self, node: HaNode) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        st = self.node.status()
        role = GaugeMetricFamily("sipha_ha_role", "1 for this node's current role",
                                 labels=["role"])
        for r in Role:
            role.add_metric([r.value], 1.0 if st["role"] == r.value else 0.0)
        yield role
        term = GaugeMetricFamily("sipha_ha_term", "Membership term (bumped by every takeover)")
        term.add_metric([], float(st["term"]))
        yield term
        takeovers = st["takeovers"]
        count = CounterMetricFamily("sipha_ha_takeovers", "Takeovers by this node")
        count.add_metric([], float(len(takeovers)))
        yield count
        last = [t["takeover_ms"] for t in takeovers if t.get("takeover_ms") is not None]
        ms = GaugeMetricFamily("sipha_ha_last_takeover_ms",
                               "The last takeover: from the peer's last forwarded message to "
                               "ours (NaN before any)")
        ms.add_metric([], float(last[-1]) if last else math.nan)
        yield ms
        peer = st["peer"]
        alive = GaugeMetricFamily("sipha_ha_peer_alive", "1 while the peer's heartbeats arrive")
        alive.add_metric([], 1.0 if peer is not None and peer["alive"] else 0.0)
        yield alive
        rep = st["replication"]
        for name in ("batches_sent", "deltas_sent", "snapshots_applied", "deltas_applied"):
            c = CounterMetricFamily(f"sipha_ha_replication_{name}", f"Replication {name}")
            c.add_metric([], float(rep[name]))
            yield c
        bad = CounterMetricFamily("sipha_ha_bad_heartbeats", "Heartbeats refused (bad key...)")
        bad.add_metric([], float(st["bad_heartbeats"]))
        yield bad
