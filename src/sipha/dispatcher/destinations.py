"""Servers named by DNS: their addresses found (RFC 3263) and kept current, off the event loop.

Theory of operation
-------------------
A server may be configured by name (``--server sip:sip1.example.net:5060``, or by an SRV name
without a port: ``sip:servers.example.net``). The hot path never sees a name: every `Server`
the scheduler may pick holds an IP address, so forwarding stays one dict lookup and never
blocks (the old code handed the name to ``sendto``, which resolved it synchronously, and the
server's answers, coming from its address, were not recognised as a server's).

* IP literals and ``localhost`` are addresses at once (`servers.literal_peer`).
* Any other name makes the server *unresolved* (``Server.resolved`` false): it is not usable
  (never picked, never probed, whatever its health says) until its name resolves.
* `NameTable` (pure, time passed in) says which names are due for a lookup: at once when a
  server is added, again when the answer expires (the smallest TTL of the records it came from,
  at least ``min_refresh``), and after a failure with a backoff (``retry`` doubling up to
  ``max_retry``). A name is looked up by one task at a time.
* `DestinationResolution` (the thin asyncio layer) runs the due lookups through
  `sipha.transport.resolver.Resolver` (dnspython's asyncio resolver: NAPTR, SRV by priority and
  weight, A/AAAA; every lookup bounded by ``dns_timeout``; answers cached for their TTL and
  negative answers briefly) and moves the server to the first address of the answer
  (`readdress`). A server is one destination: an SRV name with several targets is reached at
  its best one (the others are its fallbacks when that one stops resolving); balance over
  several servers by configuring each.
* A failed lookup never raises out: the server keeps its last address if it had one (a DNS
  outage does not take working servers away; probes still judge them), or stays unresolved,
  and requests no server can take are answered 503 by the router as for any server down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sipha.sip.errors import SipParseError
from sipha.sip.uri import SipUri, parse_uri
from sipha.transport import Peer
from sipha.transport.resolver import ResolveError, Resolver

from .health import HealthState
from .registry import ServerRegistry
from .servers import literal_ip
from .state import Server

__all__ = ["DestinationResolution", "Name", "NameTable", "readdress"]

log = logging.getLogger("sipha.dispatcher")


def readdress(registry: ServerRegistry, server: Server, peer: Peer) -> bool:
    """Give ``server`` the address ``peer`` (resolved from its name); True if it changed.
    The server becomes usable if its health allows."""
    changed = not server.resolved or server.peer != peer
    by_addr = registry.by_addr
    old = (server.peer.host, server.peer.port)
    if by_addr.get(old) is server:
        del by_addr[old]
    server.peer = peer
    server.resolved = True
    if not server.removed:
        by_addr[(peer.host, peer.port)] = server
    server.route = registry.stamp.route(server.token, peer.transport)  # NAPTR may pick TCP
    usable = server.state is HealthState.ACTIVE and not server.removed
    if server.dest.usable != usable:
        server.dest.usable = usable
        registry.scheduler.on_health_change(dest=server.dest, usable=usable)
    return changed


@dataclass(frozen=True, slots=True)
class Name:
    """What to resolve for one server: RFC 3263's inputs from its URI."""

    host: str
    port: int | None
    """None: no port in the URI, so SRV (and NAPTR) are asked (RFC 3263 §4.2)."""
    transport: str | None
    """The URI's transport (``sips:`` is tls); None lets NAPTR choose."""

    @classmethod
    def of(cls, server: Server) -> Name | None:
        """The name to resolve for ``server``, or None when its URI names an address."""
        try:
            uri = parse_uri(server.uri)
        except SipParseError:
            return None
        if not isinstance(uri, SipUri) or literal_ip(uri.host) is not None:
            return None
        transport = "tls" if uri.scheme == "sips" else uri.transport
        return cls(uri.host, uri.port, transport.lower() if transport else None)


class _Entry:
    __slots__ = ("busy", "due", "failures", "name")

    def __init__(self, name: Name, due: float) -> None:
        self.name = name
        self.due = due
        self.busy = False
        self.failures = 0


class NameTable:
    """When each named server is due for a lookup (pure: ``now`` comes in)."""

    def __init__(
        self, *, min_refresh: float = 1.0, retry: float = 2.0, max_retry: float = 60.0
    ) -> None:
        self.min_refresh = min_refresh
        self.retry = retry
        self.max_retry = max_retry
        self._entries: dict[int, _Entry] = {}

    def sync(self, servers: Iterable[Server], now: float) -> None:
        """Track the named servers of ``servers`` (new ones due now), forget the others."""
        live: set[int] = set()
        for server in servers:
            if server.removed:
                continue
            entry = self._entries.get(server.uid)
            if entry is None:
                name = Name.of(server)
                if name is None:
                    continue
                self._entries[server.uid] = _Entry(name, now)
            live.add(server.uid)
        for uid in [u for u in self._entries if u not in live]:
            del self._entries[uid]

    def due(self, now: float) -> list[tuple[int, Name]]:
        """The lookups to start now; each is marked busy until `resolved` or `failed`."""
        out = []
        for uid, entry in self._entries.items():
            if not entry.busy and entry.due <= now:
                entry.busy = True
                out.append((uid, entry.name))
        return out

    def resolved(self, uid: int, expires: float, now: float) -> None:
        """The lookup for ``uid`` answered; ask again when the answer expires."""
        entry = self._entries.get(uid)
        if entry is not None:
            entry.busy = False
            entry.failures = 0
            entry.due = max(expires, now + self.min_refresh)

    def failed(self, uid: int, now: float) -> int:
        """The lookup for ``uid`` failed; returns how many times in a row."""
        entry = self._entries.get(uid)
        if entry is None:
            return 0
        entry.busy = False
        entry.due = now + min(self.max_retry, self.retry * 2 ** min(entry.failures, 16))
        entry.failures += 1
        return entry.failures

    def next_deadline(self) -> float:
        return min((e.due for e in self._entries.values() if not e.busy), default=float("inf"))

    def __len__(self) -> int:
        return len(self._entries)


class DestinationResolution:
    """The asyncio layer: runs due lookups, readdresses servers (see the module docstring)."""

    def __init__(
        self,
        registry: Callable[[], ServerRegistry | None],
        resolver: Resolver,
        *,
        table: NameTable | None = None,
        poll: float = 1.0,
    ) -> None:
        self.registry = registry
        """The router's registry (None before the router exists)."""
        self.resolver = resolver
        self.table = table or NameTable()
        self.poll = poll
        """Seconds between looks for servers added over the API or by a reload."""
        self.failures = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for new servers now (after an API change or a reload)."""
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled. Every lookup is its own task, bounded by the resolver's timeout."""
        loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as tg:
            while True:
                registry = self.registry()
                now = loop.time()
                if registry is not None:
                    self.table.sync(registry.servers(), now)
                    for uid, name in self.table.due(now):
                        tg.create_task(self._lookup(registry, uid, name))
                wait = min(self.table.next_deadline(), now + self.poll) - loop.time()
                self._wake.clear()
                try:
                    async with asyncio.timeout(max(0.0, wait)):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def _lookup(self, registry: ServerRegistry, uid: int, name: Name) -> None:
        loop = asyncio.get_running_loop()
        try:
            answer = await self.resolver.lookup(name.host, name.port, name.transport)
            if not answer.peers:
                raise ResolveError(f"no usable record for {name.host[:60]}")
        except ResolveError as exc:
            self.failures += 1
            n = self.table.failed(uid, loop.time())
            server = registry.state.servers.get(uid)
            if n == 1 and server is not None:  # once per failure streak, never a traceback
                kept = "keeps its address" if server.resolved else "stays unused"
                log.warning("server %s: %s (%s; retrying)", server.id, exc.reason, kept)
            self.wake()
            return
        self.table.resolved(uid, answer.expires, loop.time())
        server = registry.state.servers.get(uid)
        if server is None or server.removed:
            return
        if readdress(registry, server, answer.peers[0]):
            log.info("server %s at %s", server.id, answer.peers[0])
        self.wake()
