"""Flow tokens (RFC 5626 §5.2): a phone's flow written into the URIs the edge hands out.

Theory of operation
-------------------
A *flow* is how a phone reaches us: the transport and the source address its packets come from
(for UDP the NAT's public mapping, RFC 3581 ``received``/``rport``; for TCP and TLS its
connection, which the endpoint indexes by the same address). The dispatcher writes the flow
into the Path it adds to a REGISTER and into its Record-Route, so that a request a server sends
back through us (to a registered contact, or inside a dialog) leaves from the service address
over the phone's own flow, whatever private address its Contact names.

The token is stateless: the flow itself, packed (transport, IP, port) and signed with a keyed
BLAKE2b MAC under the dispatcher secret, which both dispatchers of an HA pair share. Either of
them can therefore read a token the other wrote (a UDP flow survives a takeover as it is; a TCP
flow's connection dies with the old active, and the token then names a flow we do not have).
Nobody without the secret can make a token that steers us towards an address of their choice.

Layout: base32 (lowercase, unpadded: characters valid in a SIP URI user part) of::

    kind (1 byte: u, t, s) | IPv4 (4) or IPv6 (16) | port (2, big endian) | MAC (8)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
from typing import Final, Protocol

from sipha.transport import Peer

__all__ = ["MAX_FLOW_TOKEN", "FlowView", "read_flow_token", "write_flow_token"]

_KINDS: Final = {"udp": b"u", "tcp": b"t", "tls": b"s"}
_TRANSPORTS: Final = {v[0]: k for k, v in _KINDS.items()}
_MAC_BYTES: Final = 8
_PERSON: Final = b"sipha-flow-tok"
MAX_FLOW_TOKEN: Final = 48
"""Longest token (IPv6): 1 + 16 + 2 + 8 bytes are 44 base32 characters."""


class FlowView(Protocol):
    """What the edge asks the transport about a flow: is this connection still open? (UDP
    flows have no state: always usable.)"""

    def alive(self, peer: Peer) -> bool: ...


def _mac(payload: bytes, secret: bytes) -> bytes:
    key = secret if len(secret) <= 64 else hashlib.blake2b(secret).digest()
    return hashlib.blake2b(payload, digest_size=_MAC_BYTES, key=key, person=_PERSON).digest()


def write_flow_token(peer: Peer, secret: bytes) -> str:
    """The token naming ``peer``'s flow. Raises ValueError for a host that is not an IP
    address or a transport other than udp, tcp and tls (a flow always comes from a socket)."""
    kind = _KINDS.get(peer.transport)
    if kind is None:
        raise ValueError(f"no flow over {peer.transport!r}")
    packed = ipaddress.ip_address(peer.host.strip("[]")).packed
    payload = kind + packed + peer.port.to_bytes(2, "big")
    raw = payload + _mac(payload, secret)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def read_flow_token(token: str, secret: bytes) -> Peer | None:
    """The flow a token names, or None when it is malformed or its MAC does not verify.
    Never raises."""
    if not token or len(token) > MAX_FLOW_TOKEN or not token.isascii():
        return None
    text = token.upper()
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None
    if len(raw) not in (1 + 4 + 2 + _MAC_BYTES, 1 + 16 + 2 + _MAC_BYTES):
        return None
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(payload, secret)):
        return None
    transport = _TRANSPORTS.get(payload[0])
    if transport is None:
        return None
    ip = ipaddress.ip_address(payload[1:-2])
    return Peer(transport, str(ip), int.from_bytes(payload[-2:], "big"))
