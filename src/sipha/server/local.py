"""Who this server is on the wire: its addresses in Via, Record-Route and Contact, and the
test for "this URI names me" (RFC 3261 §16.4 Route processing), plus where a URI leads."""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
from collections.abc import Iterable

from sipha.sip.uri import SipUri
from sipha.transport import ListenSpec, Peer

__all__ = ["Local", "destination"]

_RESOLVED: dict[str, str] = {}


def _resolve(host: str) -> str:
    """An IP for ``host``; names are resolved once and cached (RFC 3263 NAPTR/SRV is out of
    scope: a cluster names its servers by address). IP literals are cached as themselves: this
    runs for every forwarded request, and parsing the literal again cost more than the rest."""
    ip = _RESOLVED.get(host)
    if ip is not None:
        return ip
    try:
        ipaddress.ip_address(host)
        ip = host
    except ValueError:
        try:
            ip = socket.gethostbyname(host)
        except OSError:
            ip = host
    if len(_RESOLVED) >= 10_000:
        _RESOLVED.clear()  # bounded: hosts come from what peers send
    _RESOLVED[host] = ip
    return ip


def destination(uri: object, default_transport: str = "udp") -> Peer | None:
    """The next hop for a SIP URI (RFC 3261 §16.6 step 7, RFC 3263 simplified): maddr or
    host, the port or 5060, the ``transport`` parameter or the default. None for other URIs.
    A ``sips:`` URI goes over TLS whatever its parameters say (RFC 5630 §3.1.3)."""
    if not isinstance(uri, SipUri):
        return None
    transport = (uri.transport or default_transport).lower()
    if uri.scheme == "sips":
        transport = "tls"
    elif transport not in ("udp", "tcp", "tls"):
        transport = default_transport
    host = (uri.maddr or uri.host).strip("[]")
    return Peer(transport, _resolve(host), uri.port or (5061 if transport == "tls" else 5060))


class Local:
    """The addresses of this server. ``advertise`` replaces the listen host in what we write
    (useful when listening on 0.0.0.0)."""

    __slots__ = ("_branch_ids", "_hosts", "_ports", "_prefix", "by_transport", "domain")

    def __init__(self, bound: Iterable[ListenSpec], domain: str, advertise: str = "") -> None:
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
        return f"SIP/2.0/{transport.upper()} {host}:{port};branch={branch};rport"

    def record_route(self, transport: str) -> str:
        host, port = self.address(transport)
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:{host}:{port}{suffix};lr>"

    def contact(self, user: str | None, transport: str) -> str:
        host, port = self.address(transport)
        suffix = "" if transport == "udp" else f";transport={transport}"
        userpart = f"{user}@" if user else ""
        return f"<sip:{userpart}{host}:{port}{suffix}>"

    def is_me(self, uri: object) -> bool:
        """Does this URI name this server (host and port; the domain with no port counts)?"""
        if not isinstance(uri, SipUri):
            return False
        host = uri.host.lower().strip("[]")
        if host not in self._hosts:
            return False
        port = uri.port
        if port is None:
            return host == self.domain.lower() or 5060 in self._ports
        return port in self._ports

    def sent_by_is_me(self, host: str, port: int | None) -> bool:
        return host.lower() in self._hosts and (port or 5060) in self._ports
