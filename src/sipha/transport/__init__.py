"""sipha.transport: asyncio UDP/TCP/TLS endpoints for SIP (RFC 3261 §18, §26)."""

from .address import ListenSpec, Peer, response_destination
from .endpoint import SipEndpoint, TransportConfig, TransportCounters, make_socket
from .tls import TlsConfig, TlsConfigError

__all__ = [
    "ListenSpec",
    "Peer",
    "SipEndpoint",
    "TlsConfig",
    "TlsConfigError",
    "TransportConfig",
    "TransportCounters",
    "make_socket",
    "response_destination",
]
