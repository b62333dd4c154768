"""What configures one server behind the dispatcher, and parsing its URI form.

``sip:127.0.0.1:5071;weight=2;priority=1;maxload=50;probe=off;id=a`` is the command-line form:
the URI with dispatcher attributes as parameters, which are removed from the URI the server is
probed with. The same attributes come from TOML tables and Kamailio ``dispatcher.list`` files.
``duid`` is Kamailio's name for ``id``; both are removed from the URI, and ``id`` wins when a
URI gives both.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipha.sip.errors import SipParseError
from sipha.sip.uri import SipUri, host_port, parse_uri
from sipha.transport import Peer
from sipha.transport.resolver import ip_literal

from .health import HealthState

__all__ = [
    "ATTRIBUTES", "ServerSpec", "literal_ip", "literal_peer", "parse_server", "uri_attributes",
]

ATTRIBUTES = ("weight", "priority", "maxload", "probe", "id", "duid")


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One configured server. ``id`` defaults to ``sip:HOST:PORT`` (or Kamailio's ``duid``)."""

    uri: str
    host: str
    port: int
    transport: str = "udp"
    weight: int = 1
    priority: int = 0
    maxload: int = 0
    probing: bool = True
    id: str = ""
    state: HealthState = HealthState.ACTIVE
    """The state the server starts in (a Kamailio flag can start it inactive or disabled)."""

    def key(self) -> str:
        return self.id or f"sip:{host_port(self.host, self.port)}"


def _int(name: str, value: str | None, text: str, minimum: int = 0) -> int:
    if value is None or not value.isdigit() or int(value) < minimum:
        raise ValueError(f"server {text!r}: {name} must be an integer >= {minimum}")
    return int(value)


def _sip_uri(text: str) -> SipUri:
    try:
        uri = parse_uri(text.strip())
    except SipParseError as exc:
        raise ValueError(
            f"server {text!r}: not a SIP URI ({exc.reason}); expected sip:HOST:PORT;weight=N"
        ) from None
    if not isinstance(uri, SipUri):
        raise ValueError(f"server {text!r}: expected a sip: URI such as sip:127.0.0.1:5071")
    return uri


def uri_attributes(text: str) -> frozenset[str]:
    """The dispatcher attributes that the URI `text` sets as parameters (``duid`` counts as
    ``id``); raises ValueError like `parse_server`."""
    names = set(_sip_uri(text).params) & set(ATTRIBUTES)
    return frozenset("id" if name == "duid" else name for name in names)


def parse_server(text: str, *, probing: bool = True) -> ServerSpec:
    """Parse ``sip:HOST:PORT;attr=value...``; raise ValueError naming the problem."""
    uri = _sip_uri(text)
    params = dict(uri.params)
    weight = _int("weight", params.pop("weight", "1"), text)
    priority = _int("priority", params.pop("priority", "0"), text)
    maxload = _int("maxload", params.pop("maxload", "0"), text)
    probe = params.pop("probe", None)
    if probe is not None:
        if probe not in ("on", "off"):
            raise ValueError(f"server {text!r}: probe must be on or off")
        probing = probe == "on"
    # Pop both, so that neither is left on the URI the server is probed and reached with.
    ident = params.pop("id", None)
    duid = params.pop("duid", None)
    ident = ident or duid or ""
    transport = (uri.transport or "udp").lower()
    if uri.scheme == "sips":
        transport = "tls"  # RFC 5630 §3.1.3: a SIPS URI is reached over TLS
    if transport not in ("udp", "tcp", "tls"):
        raise ValueError(f"server {text!r}: transport must be udp, tcp or tls")
    host = uri.host.strip("[]")
    port = uri.port or (5061 if transport == "tls" else 5060)
    clean = SipUri(uri.scheme, uri.user, uri.password, uri.host, uri.port, params, uri.headers)
    return ServerSpec(
        str(clean), host, port, transport, weight, priority, maxload, probing, ident
    )


def literal_ip(host: str) -> str | None:
    """The address a host names without DNS (an IP literal; ``localhost`` is 127.0.0.1)."""
    return "127.0.0.1" if host.lower().rstrip(".") == "localhost" else ip_literal(host)


def literal_peer(spec: ServerSpec) -> Peer | None:
    """The server's address when its host needs no DNS; None for a name (`destinations`)."""
    ip = literal_ip(spec.host)
    return None if ip is None else Peer(spec.transport, ip, spec.port)
