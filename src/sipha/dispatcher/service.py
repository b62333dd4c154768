"""The asyncio dispatcher node: sockets in, `Router` decisions, sockets out; one timer.

The receive path is the transport's datagram callback calling `Router.on_request` /
`on_response` synchronously and sending what comes back: no task, no queue, no log line per
message. Time-driven work (failover deadlines, probes, expiry sweeps) runs from a single
``loop.call_at`` handle re-armed to `Router.next_deadline()` after every batch of work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
from collections.abc import Callable
from pathlib import Path

from sipha.common.http import HttpApi, parse_host_port
from sipha.sip import Request, Response
from sipha.sip.parser import Limits
from sipha.sip.uri import host_port
from sipha.transport import ListenSpec, Peer, SipEndpoint, TransportConfig, TransportCounters
from sipha.transport.resolver import Resolver

from .api import DispatcherApi
from .config import DispatcherConfig, Sources, load_config, resolve_servers
from .destinations import DestinationResolution
from .health import HealthSettings
from .probing import ProbeSettings
from .router import Router, RouterSettings
from .servers import ServerSpec

log = logging.getLogger("sipha.dispatcher")

# Never fire the timer more often than this: failover precision of a few ms is plenty.
MIN_TIMER_GAP = 0.005
# Datagrams read before judging silence: a stall's backlog at a few thousand messages a second.
DRAIN_LIMIT = 2000


def router_settings(cfg: DispatcherConfig) -> RouterSettings:
    pc = cfg.probe
    return RouterSettings(
        algorithm=cfg.algorithm,
        algorithm_options=dict(cfg.algorithm_options),
        failover_timeout=cfg.failover_timeout,
        failover_codes=frozenset(cfg.failover_codes),
        max_attempts=cfg.max_attempts,
        dialog_aware=cfg.dialog_aware,
        dialog_timeout=cfg.dialog_timeout,
        rate_limit=cfg.rate_limit,
        rate_window=cfg.rate_window,
        rate_limit_reply=cfg.rate_limit_reply,
        flow_timer=cfg.flow_timer,
        reflection_rate=cfg.reflection_rate,
        reflection_burst=cfg.reflection_burst,
        probe=ProbeSettings(pc.interval, pc.timeout, frozenset(pc.accepted_codes)),
        health=HealthSettings(pc.probing_threshold, pc.inactive_threshold, pc.suspect_hold),
    )


class DispatcherService:
    """Owns the endpoint, the router, the timer and the HTTP API."""

    def __init__(
        self,
        cfg: DispatcherConfig,
        specs: list[ServerSpec],
        *,
        sources: Sources | None = None,
        bind_on_start: bool = True,
    ) -> None:
        self.cfg = cfg
        self.specs = specs
        self.sources = sources
        """Where `specs` came from; a reload reads them again (None: keep `specs`)."""
        self.bind_on_start = bind_on_start
        """False for an HA standby in local mode: it binds the service address when promoted."""
        self.endpoint = self._new_endpoint()
        self.passive = False
        """An HA standby: no probes, no failover timers (the active's state is replicated)."""
        self.after_batch: Callable[[], None] | None = None
        """Called after each batch of forwarded messages (HA streams its replication then)."""
        self.api_routes: list[Callable[[HttpApi], None]] = []
        """Extra routes added to the HTTP API before it starts (the HA endpoints)."""
        self.router: Router | None = None
        self.api: DispatcherApi | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed = float("inf")
        self._stopped = asyncio.Event()
        self.destinations: DestinationResolution | None = None
        """Keeps servers given by name at their current address (`destinations`)."""
        self._resolving: asyncio.Task[None] | None = None

    def _new_endpoint(self) -> SipEndpoint:
        cfg = self.cfg
        return SipEndpoint(
            [ListenSpec.parse(text) for text in cfg.listen],
            self._on_message,
            config=TransportConfig(
                limits=Limits(max_message_size=cfg.max_message_size), freebind=cfg.freebind,
                tls=cfg.tls, outbound_keepalives=True,
            ),
        )

    async def bind(self) -> None:
        """Bind the listen addresses (HA promotion); raises OSError while one is taken."""
        if self.endpoint.bound:
            return
        endpoint = self._new_endpoint()
        await endpoint.start()
        self.endpoint = endpoint

    async def unbind(self) -> None:
        """Close the listen sockets (HA demotion); the service keeps its state."""
        old = self.endpoint
        self.endpoint = self._new_endpoint()
        await old.close()

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        if self.bind_on_start:
            await self.endpoint.start()
        if self.cfg.advertise:
            host, _, port = self.cfg.advertise.rpartition(":")
            advertise = (host.strip("[]"), int(port))  # "[::1]:5060": the address itself
        else:
            first = self.endpoint.bound[0] if self.endpoint.bound else self.endpoint.listens[0]
            advertise = (first.host, first.port)
        secret = self.cfg.secret.encode() if self.cfg.secret else secrets.token_bytes(16)
        router = Router(
            router_settings(self.cfg),
            advertise=advertise,
            secret=secret,
            rng=random.Random(int.from_bytes(os.urandom(8), "big")),
            flows=self,
        )
        router.listen_ports = {b.transport: b.port for b in reversed(self.endpoint.bound)}
        for spec in self.specs:
            router.add_server(spec)
        self.router = router
        resolver = Resolver(
            [parse_host_port(t, what="DNS server") for t in self.cfg.dns_servers],
            timeout=self.cfg.dns_timeout,
        )
        self.destinations = DestinationResolution(
            lambda: None if self.router is None else self.router.registry, resolver
        )
        self._resolving = loop.create_task(self.destinations.run(), name="dispatcher-dns")
        if self.cfg.http:
            self.api = DispatcherApi(self, self.cfg.http, token=self.cfg.token or None)
            for add_routes in self.api_routes:
                add_routes(self.api.http)
            await self.api.start()
        log.info(
            "dispatcher on %s (advertised %s), %d servers, algorithm %s",
            ", ".join(str(b) for b in self.endpoint.bound), host_port(*advertise),
            len(self.specs),
            self.cfg.algorithm,
        )
        self._fire()

    async def run(self) -> None:
        await self.start()
        try:
            await self._stopped.wait()
        finally:
            await self.close()

    def stop(self) -> None:
        self._stopped.set()

    async def stopped(self) -> None:
        """Return once `stop()` was called."""
        await self._stopped.wait()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._resolving is not None:
            self._resolving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resolving
        if self.api is not None:
            await self.api.close()
        await self.endpoint.close()

    def alive(self, peer: Peer) -> bool:
        """Is a phone's TCP or TLS flow still connected (the edge's `FlowView`)? Asked of the
        endpoint of the moment: HA promotion and demotion replace it."""
        return self.endpoint.connected(peer)

    @property
    def counters(self) -> TransportCounters:
        """The transport's counters (the endpoint is replaced on HA promotion and demotion)."""
        return self.endpoint.counters

    def now(self) -> float:
        """The loop's clock: the time base of every router decision."""
        assert self._loop is not None, "start the dispatcher first"
        return self._loop.time()

    # -- hot path ---------------------------------------------------------------------------
    def _on_message(self, msg: Request | Response, peer: Peer) -> None:
        router = self.router
        if router is None:
            return
        loop = self._loop
        assert loop is not None
        now = loop.time()
        if isinstance(msg, Request):
            out = router.on_request(msg, peer, now)
        else:
            out = router.on_response(msg, peer, now)
        send = self.endpoint.send
        for data, to in out:
            send(data, to)
        if out and self.after_batch is not None:
            self.after_batch()
        if router.changes:
            self.log_changes()
        if router.next_deadline() < self._armed:
            self._arm()

    # -- timer ------------------------------------------------------------------------------
    def _arm(self) -> None:
        router = self.router
        loop = self._loop
        assert router is not None
        assert loop is not None
        deadline = max(router.next_deadline(), loop.time() + MIN_TIMER_GAP)
        if self._timer is not None:
            self._timer.cancel()
        self._armed = deadline
        self._timer = loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        router = self.router
        loop = self._loop
        assert router is not None
        assert loop is not None
        self._timer = None
        self._armed = float("inf")
        if self.passive:
            return  # re-armed by kick() on promotion
        try:
            # Read what has already arrived before judging anyone's silence (failover, probe
            # timeouts): after our own stall the loop runs timers before it polls the sockets.
            # Only then, and bounded: under steady load the sockets are never empty, and an
            # unbounded read would keep the loop (timers, the HA heartbeats) waiting.
            if router.silence_due(loop.time()):
                self.endpoint.drain(limit=DRAIN_LIMIT)
            out = router.on_timer(loop.time())
            send = self.endpoint.send
            for data, to in out:
                send(data, to)
            if router.changes:
                self.log_changes()
        except Exception:
            log.exception("timer work failed")
        self._arm()

    def kick(self) -> None:
        """Run timer work now (after an API change that affects probing); look up the names
        of servers just added."""
        if self.destinations is not None:
            self.destinations.wake()
        if self._loop is not None and self.router is not None:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_soon(self._fire)  # type: ignore[assignment]

    def log_changes(self) -> None:
        """Log the health changes the router made since the last call."""
        router = self.router
        assert router is not None
        for change in router.changes:
            log.warning(
                "server %s: %s -> %s (%s)",
                change.server_id, change.old.value, change.new.value, change.cause,
            )
        router.changes.clear()

    # -- operations -------------------------------------------------------------------------
    def reload(self) -> dict[str, list[str]]:
        """Re-read the configured servers: add new ones, remove gone ones, update weights.

        Reads every source the node started from (the file, the flags over it, ``--server``),
        so a server given by a flag stays. Servers added over the API since are removed, as a
        Kamailio reload resets the set to its list. Raises ConfigError for a bad source, before
        anything changes.
        """
        router = self.router
        assert router is not None
        specs = self.sources.load()[1] if self.sources is not None else self.specs
        wanted = {s.key(): s for s in specs}
        added: list[str] = []
        removed: list[str] = []
        updated: list[str] = []
        for server in router.servers():
            if server.id not in wanted:
                router.remove_server(server)
                removed.append(server.id)
        for key, spec in wanted.items():
            existing = router.find(key)
            if existing is None:
                router.add_server(spec)
                added.append(key)
            elif existing.dest.weight != spec.weight:
                router.set_weight(existing, spec.weight)
                updated.append(key)
        self.specs = specs
        self.kick()
        log.info("reload: added %s, removed %s, reweighted %s", added, removed, updated)
        return {"added": added, "removed": removed, "reweighted": updated}


def config_from_file(path: str) -> tuple[DispatcherConfig, list[ServerSpec]]:
    cfg = load_config(path)
    return cfg, resolve_servers(cfg, source=str(Path(path)))
