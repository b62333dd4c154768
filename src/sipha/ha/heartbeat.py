"""Heartbeats between the two HA peers: typed, versioned, optionally authenticated datagrams.

Each node sends one `Heartbeat` to its peer every ``heartbeat_interval`` and at every role
change, over UDP. It carries what the peer's `Membership` needs to decide (role, priority,
term, held) and what fencing and replication need (the PID to fence in local mode, the TCP
port of the replication stream, an incarnation that changes when the process restarts).

Decoding is the boundary: anything a datagram holds raises only `HeartbeatError`. With a
shared ``key`` every datagram starts with a truncated HMAC-SHA256 of its body, so a forged
heartbeat cannot make a node fence (SIGKILL) an arbitrary PID or give up the address.
"""

from __future__ import annotations

import hashlib
import hmac

import msgspec

from .membership import PeerStatus, Role

__all__ = ["PROTOCOL_VERSION", "Heartbeat", "HeartbeatCodec", "HeartbeatError"]

PROTOCOL_VERSION = 1
_MAC_LEN = 16


class HeartbeatError(ValueError):
    """A datagram that is not a valid heartbeat of our pair (bad bytes, MAC, version or pair)."""


class Heartbeat(msgspec.Struct, frozen=True, tag="hb"):
    version: int
    cluster: str
    node_id: str
    priority: int
    role: Role
    term: int
    pid: int
    held: bool
    incarnation: int
    seq: int
    replication_port: int = 0
    """TCP port of this node's replication stream (0: none)."""
    api: str = ""
    """HOST:PORT of this node's HTTP API, shown by ``ctl status``."""
    last_forward: float = 0.0
    """Wall-clock time of this node's last forwarded SIP message (0: none yet). The new active
    measures a takeover from it when the pair does not replicate (the replication stream
    carries it more precisely otherwise); it is up to a heartbeat interval old."""

    def peer_status(self) -> PeerStatus:
        return PeerStatus(
            self.node_id, self.priority, self.role, self.term, self.pid, self.held,
            self.incarnation,
        )


class HeartbeatCodec:
    """Encodes and decodes heartbeats for one pair (``cluster`` name and optional key)."""

    __slots__ = ("_dec", "_enc", "cluster", "key")

    def __init__(self, cluster: str, key: bytes | None = None) -> None:
        self.cluster = cluster
        self.key = key or None
        self._enc = msgspec.msgpack.Encoder()
        self._dec = msgspec.msgpack.Decoder(Heartbeat)

    def encode(self, hb: Heartbeat) -> bytes:
        body = self._enc.encode(hb)
        if self.key is None:
            return body
        return hmac.new(self.key, body, hashlib.sha256).digest()[:_MAC_LEN] + body

    def decode(self, data: bytes) -> Heartbeat:
        """Raises HeartbeatError for anything but a heartbeat of our pair and version."""
        body = data
        if self.key is not None:
            if len(data) < _MAC_LEN:
                raise HeartbeatError("datagram too short for its MAC")
            mac, body = data[:_MAC_LEN], data[_MAC_LEN:]
            want = hmac.new(self.key, body, hashlib.sha256).digest()[:_MAC_LEN]
            if not hmac.compare_digest(mac, want):
                raise HeartbeatError("bad MAC (wrong or missing HA key)")
        try:
            hb = self._dec.decode(body)
        except msgspec.DecodeError as exc:
            raise HeartbeatError(f"not a heartbeat: {exc}") from None
        if hb.version != PROTOCOL_VERSION:
            raise HeartbeatError(f"heartbeat version {hb.version}, expected {PROTOCOL_VERSION}")
        if hb.cluster != self.cluster:
            raise HeartbeatError(f"heartbeat of pair {hb.cluster!r}, we are {self.cluster!r}")
        return hb
