"""Where messages come from and go to: peers, listen specs, and RFC 3261 §18.2.2 routing."""

from __future__ import annotations

from dataclasses import dataclass

from sipha.sip.message import Response

TRANSPORTS = ("udp", "tcp", "tls")


@dataclass(frozen=True, slots=True)
class Peer:
    """A remote transport address: ``transport`` is ``"udp"``, ``"tcp"`` or ``"tls"``."""

    transport: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ListenSpec:
    """``udp:127.0.0.1:5060``, ``tcp:127.0.0.1:5060`` or ``tls:127.0.0.1:5061`` (port 0 picks a
    free one)."""

    transport: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> ListenSpec:
        """Parse a listen spec; raise ValueError naming the expected form."""
        form = "expected TRANSPORT:HOST:PORT such as udp:127.0.0.1:5060"
        transport, sep, rest = text.partition(":")
        host, sep2, port_text = rest.rpartition(":")
        transport = transport.lower()
        if not sep or not sep2 or transport not in TRANSPORTS:
            raise ValueError(f"listen address {text!r}: {form}")
        host = host.strip("[]")
        if not host:
            raise ValueError(f"listen address {text!r}: missing host; {form}")
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ValueError(f"listen address {text!r}: port must be 0..65535; {form}")
        return cls(transport, host, int(port_text))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


def response_destination(response: Response, default_transport: str = "udp") -> Peer:
    """Where a response goes by its top Via (RFC 3261 §18.2.2 with RFC 3581 rport).

    Raises:
        SipParseError: the top Via is malformed.
    """
    via = response.via
    transport = via.transport.lower()
    if transport not in TRANSPORTS:
        transport = default_transport
    host = via.received or via.maddr or via.host
    host = host.strip("[]")
    rport = via.rport
    port: int | None = rport if isinstance(rport, int) and rport > 0 else via.port
    return Peer(transport, host, port or 5060)
