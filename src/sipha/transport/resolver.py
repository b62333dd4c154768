"""Asynchronous, bounded name resolution for next hops (RFC 3263 §4: NAPTR, SRV, A/AAAA).

Theory of operation
-------------------
Host names reach us inside messages (Route, Request-URI, Contact), so resolving them is
attacker-driven work: it must never block the event loop (``gethostbyname`` froze a server for
8.5 s on three datagrams), must be bounded in time and in memory, and must fail cleanly: a name
that does not resolve gives the caller a :class:`ResolveError` carrying the SIP status to
answer (503 for a name with no usable records, 408 when the DNS did not answer in time).

:meth:`Resolver.resolve` follows RFC 3263 for a SIP URI's host, port and ``transport``:

* an IP literal is its own answer (no DNS); ``localhost`` is the loopback address;
* §4.1: with no ``transport`` parameter and no port, NAPTR records (``SIP+D2U``/``SIP+D2T``)
  choose the transport and name the SRV record; without NAPTR the SRV records of each
  supported transport are tried in order (UDP first);
* §4.2: a port given means A/AAAA only; otherwise SRV (``_sip._udp.host``, ``_sips._tcp.host``
  for TLS) ordered by priority then weight, each target resolved by A/AAAA; no SRV means
  A/AAAA with port 5060 (5061 for TLS).

Every answer is cached for its TTL (clamped to ``max_ttl``), a negative answer (NXDOMAIN, no
data) for ``negative_ttl``; the cache is an LRU of ``max_entries`` records. Concurrent lookups
of one name share one query, and at most ``max_pending`` names are looked up at once: more is
answered 503 at once rather than queued without bound. The clock (``now``) is read once per
lookup by the asyncio layer; :class:`DnsCache` itself takes ``now`` and reads no clock.

dnspython's asyncio resolver does the I/O (it does not read /etc/hosts: a cluster names its
nodes by address or by DNS). This module belongs to the transport layer: sipha.sip and external
libraries only, so the server and the dispatcher can share it.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from sipha.transport.address import TRANSPORTS, Peer

__all__ = ["DnsCache", "Resolution", "ResolveError", "Resolver", "ip_literal"]

# RFC 3263 §4.1 NAPTR services for the transports we speak.
_NAPTR_SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
_MAX_NAME = 253
_MAX_TARGETS = 8  # SRV targets followed per name: a huge RRset costs one lookup each


def _default_port(transport: str) -> int:
    return 5061 if transport == "tls" else 5060


class ResolveError(Exception):
    """A next hop that cannot be resolved; ``status`` is what to answer (503 or 408)."""

    def __init__(self, reason: str, status: int = 503) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@functools.lru_cache(maxsize=4096)
def ip_literal(host: str) -> str | None:
    """``host`` as an IP address string (brackets removed), or None for a name. Cached
    (bounded): every forwarded request asks, and parsing the literal costs more than the
    rest of choosing the next hop."""
    text = host.strip("[]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Entry:
    expires: float
    records: tuple[tuple[object, ...], ...] | None  # None: a cached negative answer


@dataclass(slots=True)
class Resolution:
    """An answer with the time it stops being valid: the earliest expiry of every record (or
    cached negative answer) it was built from, on the loop's clock; ``inf`` for an IP literal."""

    peers: list[Peer]
    expires: float = float("inf")

    def note(self, expires: float) -> None:
        if expires < self.expires:
            self.expires = expires


class DnsCache:
    """TTL-honouring, size-bounded cache of (name, type) -> records; time passed in as ``now``."""

    def __init__(
        self, *, max_entries: int = 10_000, negative_ttl: float = 30.0, max_ttl: float = 3600.0
    ) -> None:
        self.max_entries = max_entries
        self.negative_ttl = negative_ttl
        self.max_ttl = max_ttl
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    def get(self, key: tuple[str, str], now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(
        self,
        key: tuple[str, str],
        records: tuple[tuple[object, ...], ...] | None,
        ttl: float,
        now: float,
    ) -> None:
        ttl = self.negative_ttl if records is None else max(0.0, min(ttl, self.max_ttl))
        self._entries[key] = _Entry(now + ttl, records)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class Resolver:
    """RFC 3263 next-hop resolution over dnspython's asyncio resolver.

    ``nameservers``: (ip, port) pairs; empty means the system's /etc/resolv.conf. ``timeout``
    bounds one :meth:`resolve` call as a whole.
    """

    def __init__(
        self,
        nameservers: Sequence[tuple[str, int]] = (),
        *,
        timeout: float = 2.0,
        negative_ttl: float = 30.0,
        max_ttl: float = 3600.0,
        max_entries: int = 10_000,
        max_pending: int = 256,
    ) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self.cache = DnsCache(max_entries=max_entries, negative_ttl=negative_ttl, max_ttl=max_ttl)
        self._pending: dict[tuple[str, str], asyncio.Task[_Entry]] = {}
        self.failures = 0  # lookups that ended in ResolveError (a counter for status pages)
        if nameservers:
            self._dns = dns.asyncresolver.Resolver(configure=False)
            self._dns.nameservers = [
                dns.nameserver.Do53Nameserver(ip, port) for ip, port in nameservers
            ]
        else:
            try:
                self._dns = dns.asyncresolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                self._dns = dns.asyncresolver.Resolver(configure=False)
                self._dns.nameservers = ["127.0.0.1"]
        self._dns.lifetime = timeout
        self._dns.cache = None  # ours honours TTLs and negative answers with bounds

    def cached(self, host: str, port: int | None, transport: str | None) -> Peer | None:
        """The answer without waiting, when there is one: IP literals, localhost. Names go
        through :meth:`resolve` (their cache lives there)."""
        t = transport if transport in TRANSPORTS else "udp"
        ip = ip_literal(host)
        if ip is None and host.lower().rstrip(".") == "localhost":
            ip = "127.0.0.1"
        return None if ip is None else Peer(t, ip, port or _default_port(t))

    async def resolve(
        self, host: str, port: int | None, transport: str | None, default_transport: str = "udp"
    ) -> list[Peer]:
        """Next hops for a SIP URI's host/port/transport, best first (RFC 3263 §4).

        ``transport`` is the URI's ``transport`` parameter (None when absent). Raises
        :class:`ResolveError` (503: no usable records or too many lookups; 408: timeout);
        never anything else for any host string.
        """
        return (await self.lookup(host, port, transport, default_transport)).peers

    async def lookup(
        self, host: str, port: int | None, transport: str | None, default_transport: str = "udp"
    ) -> Resolution:
        """`resolve` with the time the answer expires (the earliest TTL of the records it was
        built from): a caller that keeps the answer (the dispatcher's destinations) asks again
        then. Raises :class:`ResolveError` like `resolve`."""
        peer = self.cached(host, port, transport or default_transport)
        if peer is not None:
            return Resolution([peer])
        name = host.strip("[]").lower().rstrip(".")
        if not name or len(name) > _MAX_NAME or any(c.isspace() for c in name):
            raise ResolveError(f"bad host name {host[:60]!r}")
        try:
            answer = Resolution([])
            async with asyncio.timeout(self.timeout):
                answer.peers = await self._resolve(name, port, transport, default_transport, answer)
                return answer
        except TimeoutError:
            self.failures += 1
            raise ResolveError(f"DNS timeout for {name[:60]}", 408) from None
        except ResolveError:
            self.failures += 1
            raise

    async def _resolve(
        self, name: str, port: int | None, transport: str | None, default: str, seen: Resolution
    ) -> list[Peer]:
        if port is not None:  # §4.2: an explicit port means A/AAAA only
            return await self._hosts(name, port, transport or default, seen)
        if transport is None:
            # §4.1: NAPTR picks the transport and names the SRV record.
            for service, naptr_transport, srv in await self._naptr(name, seen):
                del service
                peers = await self._srv(srv, naptr_transport, seen)
                if peers:
                    return peers
        for t in (transport,) if transport else ("udp", "tcp"):
            # RFC 3263 §4.2: SIPS over TCP is "_sips._tcp".
            qname = f"_sips._tcp.{name}" if t == "tls" else f"_sip._{t}.{name}"
            peers = await self._srv(qname, t, seen)
            if peers:
                return peers
        t = transport or default
        return await self._hosts(name, _default_port(t), t, seen)

    async def _naptr(self, name: str, seen: Resolution) -> list[tuple[str, str, str]]:
        records = await self._query(name, "NAPTR", seen)
        found = []
        for order, pref, flags, service, replacement in records:
            t = _NAPTR_SERVICES.get(str(service).upper())
            if t is not None and str(flags).lower() == "s":
                found.append((int(str(order)), int(str(pref)), str(service), t, str(replacement)))
        found.sort()
        return [(s, t, r.rstrip(".")) for _, _, s, t, r in found]

    async def _srv(self, qname: str, transport: str, seen: Resolution) -> list[Peer]:
        records = await self._query(qname, "SRV", seen)
        # RFC 2782: lowest priority first; within one, heavier weight first (deterministic:
        # the dispatcher spreads load itself, a server only needs a working next hop).
        ordered = sorted(records, key=lambda r: (int(str(r[0])), -int(str(r[1]))))
        peers: list[Peer] = []
        for _, _, port, target in ordered[:_MAX_TARGETS]:
            host = str(target).rstrip(".")
            if not host:  # "." target: the service is decidedly not available here
                continue
            try:
                peers.extend(await self._hosts(host, int(str(port)), transport, seen))
            except ResolveError:
                continue
        return peers

    async def _hosts(self, name: str, port: int, transport: str, seen: Resolution) -> list[Peer]:
        peer = self.cached(name, port, transport)
        if peer is not None:
            return [peer]
        t = transport if transport in TRANSPORTS else "udp"
        for rdtype in ("A", "AAAA"):
            addresses = await self._query(name, rdtype, seen)
            if addresses:
                return [Peer(t, str(a[0]), port) for a in addresses[:_MAX_TARGETS]]
        raise ResolveError(f"no address for {name[:60]}")

    async def _query(
        self, name: str, rdtype: str, seen: Resolution
    ) -> tuple[tuple[object, ...], ...]:
        key = (name, rdtype)
        loop = asyncio.get_running_loop()
        entry = self.cache.get(key, loop.time())
        if entry is None:
            task = self._pending.get(key)
            if task is None:
                if len(self._pending) >= self.max_pending:
                    raise ResolveError("too many DNS lookups in progress")
                task = loop.create_task(self._ask(name, rdtype))
                self._pending[key] = task
                task.add_done_callback(functools.partial(self._done, key))
            # Shielded: a caller giving up (its timeout) leaves the shared query to the others.
            entry = await asyncio.shield(task)
        seen.note(entry.expires)
        return entry.records or ()

    def _done(self, key: tuple[str, str], task: asyncio.Task[_Entry]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here: the waiters that are left re-raise it

    async def _ask(self, name: str, rdtype: str) -> _Entry:
        loop = asyncio.get_running_loop()
        try:
            answer = await self._dns.resolve(name, rdtype, search=False, raise_on_no_answer=True)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            self.cache.put((name, rdtype), None, 0.0, loop.time())
            return self.cache.get((name, rdtype), loop.time()) or _Entry(0.0, None)
        except dns.resolver.LifetimeTimeout:
            raise TimeoutError from None
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            raise ResolveError(f"DNS failure for {name[:60]}: {type(exc).__name__}") from None
        rdatatype = dns.rdatatype.from_text(rdtype)
        records: list[tuple[object, ...]] = []
        for rdata in answer:
            if rdata.rdtype != rdatatype:
                continue
            if rdtype in ("A", "AAAA"):
                records.append((rdata.address,))
            elif rdtype == "SRV":
                records.append((rdata.priority, rdata.weight, rdata.port, rdata.target))
            else:
                records.append(
                    (
                        rdata.order,
                        rdata.preference,
                        rdata.flags.decode(errors="replace"),
                        rdata.service.decode(errors="replace"),
                        rdata.replacement,
                    )
                )
        ttl = float(answer.rrset.ttl) if answer.rrset is not None else 0.0
        self.cache.put((name, rdtype), tuple(records), ttl, loop.time())
        return self.cache.get((name, rdtype), loop.time()) or _Entry(loop.time(), tuple(records))
