"""What configures one server behind the dispatcher, and parsing its URI form.

``sip:127.0.0.1:5071;weight=2;priority=1;maxload=50;probe=off;id=a`` is the command-line form:
the URI with dispatcher attributes as parameters, which are removed from the URI the server is
probed with. The same attributes come from TOML tables and Kamailio ``dispatcher.list`` files.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipha.sip.errors import SipParseError
from sipha.sip.uri import SipUri, parse_uri

__all__ = ["ATTRIBUTES", "ServerSpec", "parse_server"]

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

    def key(self) -> str:
        return self.id or f"sip:{self.host}:{self.port}"


def _int(name: str, value: str | None, text: str, minimum: int = 0) -> int:
    if value is None or not value.isdigit() or int(value) < minimum:
        raise ValueError(f"server {text!r}: {name} must be an integer >= {minimum}")
    return int(value)


def parse_server(text: str, *, probing: bool = True) -> ServerSpec:
    """Parse ``sip:HOST:PORT;attr=value...``; raise ValueError naming the problem."""
    try:
        uri = parse_uri(text.strip())
    except SipParseError as exc:
        raise ValueError(
            f"server {text!r}: not a SIP URI ({exc.reason}); expected sip:HOST:PORT;weight=N"
        ) from None
    if not isinstance(uri, SipUri):
        raise ValueError(f"server {text!r}: expected a sip: URI such as sip:127.0.0.1:5071")
    params = dict(uri.params)
    weight = _int("weight", params.pop("weight", "1"), text)
    priority = _int("priority", params.pop("priority", "0"), text)
    maxload = _int("maxload", params.pop("maxload", "0"), text)
    probe = params.pop("probe", None)
    if probe is not None:
        if probe not in ("on", "off"):
            raise ValueError(f"server {text!r}: probe must be on or off")
        probing = probe == "on"
    ident = params.pop("id", None) or params.pop("duid", None) or ""
    transport = (uri.transport or "udp").lower()
    if transport not in ("udp", "tcp"):
        raise ValueError(f"server {text!r}: transport must be udp or tcp")
    host = uri.host.strip("[]")
    port = uri.port or 5060
    clean = SipUri(uri.scheme, uri.user, uri.password, uri.host, uri.port, params, uri.headers)
    return ServerSpec(
        str(clean), host, port, transport, weight, priority, maxload, probing, ident
    )
