"""Who this server is on the wire: its addresses in Via, Record-Route and Contact, and the
test for "this URI names me" (RFC 3261 §16.4 Route processing), plus where a URI leads.

"Me" is any address we listen on or advertise, the domain, and the configured aliases (the
service address of the dispatcher pair and the dispatchers themselves: a Route naming them
reached us through them, so it is spent). :meth:`Local.is_own_socket` is narrower: the
addresses we really listen on, which no request may be forwarded to.

:func:`destination` never blocks: IP literals (and ``localhost``) only. A host name is resolved
by the proxy through :class:`~sipha.transport.resolver.Resolver` (asynchronous, bounded).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable

from sipha.sip.uri import SipUri, host_port
from sipha.transport import ListenSpec, Peer
from sipha.transport.resolver import ip_literal

__all__ = ["HopSpec", "Local", "destination", "hop_spec"]

HopSpec = tuple[str, int | None, str | None]  # host, port, transport parameter


def hop_spec(uri: object) -> HopSpec | None:
    """(host, port, transport) to resolve for a SIP URI (maddr wins over the host, RFC 3261
    §16.6 step 7); None for other URIs. A ``sips:`` URI goes over TLS whatever its parameters
    say (RFC 5630 §3.1.3); transports we do not speak are left to the default."""
    if not isinstance(uri, SipUri):
        return None
    transport = uri.transport
    if uri.scheme == "sips":
        transport = "tls"
    elif transport not in ("udp", "tcp", "tls"):
        transport = None
    return ((uri.maddr or uri.host).strip("[]"), uri.port, transport)


def destination(uri: object, default_transport: str = "udp") -> Peer | None:
    """The next hop for a SIP URI whose host is an IP literal (or localhost), without DNS;
    None for host names (resolve them with the proxy's resolver) and for other URIs."""
    spec = hop_spec(uri)
    if spec is None:
        return None
    host, port, transport = spec
    ip = "127.0.0.1" if host.lower() == "localhost" else ip_literal(host)
    if ip is None:
        return None
    t = transport or default_transport
    return Peer(t, ip, port or (5061 if t == "tls" else 5060))


class Local:
    """The addresses of this server. ``advertise`` replaces the listen host in what we write
    (useful when listening on 0.0.0.0)."""

    __slots__ = (
        "_aliases",
        "_branch_ids",
        "_hosts",
        "_ports",
        "_prefix",
        "_sockets",
        "by_transport",
        "domain",
    )

    def __init__(
        self,
        bound: Iterable[ListenSpec],
        domain: str,
        advertise: str = "",
        aliases: Iterable[tuple[str, int | None]] = (),
    ) -> None:
        bound = list(bound)
        self._sockets = frozenset((spec.host, spec.port) for spec in bound)
        self._aliases = frozenset((host.lower().strip("[]"), port) for host, port in aliases)
        self.by_transport: dict[str, tuple[str, int]] = {}
        self._ports: set[int] = set()
        hosts = {domain.lower(), "localhost"}
        for spec in bound:
            host = advertise or spec.host
            if host in ("0.0.0.0", "::"):
                host = "127.0.0.1"
            self.by_transport.setdefault(spec.transport, (host, spec.port))
            self._ports.add(spec.port)
            hosts.add(spec.host.lower())
            hosts.add(host.lower())
        self._hosts = frozenset(hosts)
        self.domain = domain
        # Unique, cheap per-request ids: a random process prefix and a counter.
        self._prefix = os.urandom(4).hex()
        self._branch_ids = itertools.count(1)

    def address(self, transport: str) -> tuple[str, int]:
        """(host, port) we are reached at over ``transport`` (the first listener otherwise)."""
        addr = self.by_transport.get(transport)
        if addr is None:
            addr = next(iter(self.by_transport.values()))
        return addr

    def unique(self) -> str:
        """A token unique to this process and call (tags, branches)."""
        return f"{self._prefix}{next(self._branch_ids):x}"

    def via(self, transport: str, branch: str) -> str:
        host, port = self.address(transport)
        return f"SIP/2.0/{transport.upper()} {host_port(host, port)};branch={branch};rport"

    def record_route(self, transport: str, params: str = "") -> str:
        """Our Record-Route value; ``params`` (";name=value...") go after ``lr``."""
        host, port = self.address(transport)
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:{host_port(host, port)}{suffix};lr{params}>"

    def contact(self, user: str | None, transport: str) -> str:
        host, port = self.address(transport)
        suffix = "" if transport == "udp" else f";transport={transport}"
        userpart = f"{user}@" if user else ""
        return f"<sip:{userpart}{host_port(host, port)}{suffix}>"

    def is_me(self, uri: object) -> bool:
        """Does this URI name this server (host and port; the domain with no port counts)?"""
        if not isinstance(uri, SipUri):
            return False
        host = uri.host.lower().strip("[]")
        port = uri.port
        if self._aliases and ((host, port) in self._aliases or (host, None) in self._aliases):
            return True
        if host not in self._hosts:
            return False
        if port is None:
            return host == self.domain.lower() or 5060 in self._ports
        return port in self._ports

    def is_alias_address(self, host: str, port: int) -> bool:
        """Is (host, port) a configured alias (a dispatcher, the service address)? A request
        from there was relayed by the cluster's edge."""
        host = host.lower().strip("[]")
        return (host, port) in self._aliases or (host, None) in self._aliases

    def is_own_socket(self, peer: Peer) -> bool:
        """Is ``peer`` one of the addresses we listen on? Forwarding there would loop."""
        for host, port in self._sockets:
            if port == peer.port and (host == peer.host or host in ("0.0.0.0", "::")):
                return True
        return False

    def sent_by_is_me(self, host: str, port: int | None) -> bool:
        return host.lower() in self._hosts and (port or 5060) in self._ports
