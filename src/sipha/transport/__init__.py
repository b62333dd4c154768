"""sipha.transport: asyncio UDP/TCP endpoints for SIP (RFC 3261 §18)."""

from .address import ListenSpec, Peer, response_destination
from .endpoint import SipEndpoint, TransportConfig, TransportCounters, make_socket

__all__ = [
    "ListenSpec",
    "Peer",
    "SipEndpoint",
    "TransportConfig",
    "TransportCounters",
    "make_socket",
    "response_destination",
]
