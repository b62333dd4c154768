"""STUN binding requests answered on the SIP UDP port: RFC 5626 §8 keepalives (RFC 5389).

A phone registered with outbound sends STUN binding requests over its UDP flow to the edge,
on the SIP port itself; the binding response tells it the address the edge sees it at
(XOR-MAPPED-ADDRESS), and a change means its NAT mapping moved and it must re-register. SIP
and STUN share the socket: a STUN message starts with two zero bits and carries the magic
cookie, a SIP message starts with a letter (RFC 5626 §8, RFC 7983 demultiplexing).

Pure: bytes in, bytes out, never raises. Only a well-formed Binding request (no attributes we
must understand, the length field matching the datagram) gets an answer, and the answer is at
most 52 bytes (XOR-MAPPED-ADDRESS of an IPv6 source and FINGERPRINT): a forged source can draw
at most 2.6 times the bytes it sends, less than a SIP error answer to a short datagram.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from typing import Final

__all__ = ["MAGIC_COOKIE", "binding_response", "looks_like_stun"]

MAGIC_COOKIE: Final = 0x2112A442
_BINDING_REQUEST: Final = 0x0001
_BINDING_SUCCESS: Final = 0x0101
_XOR_MAPPED_ADDRESS: Final = 0x0020
_FINGERPRINT: Final = 0x8028
_FINGERPRINT_XOR: Final = 0x5354554E
_HEADER: Final = struct.Struct("!HHI12s")
_MAX_REQUEST: Final = 548  # RFC 5389 §7.1: what fits the smallest path MTU


def looks_like_stun(data: bytes) -> bool:
    """The first two bits are zero and the magic cookie is in place (RFC 5389 §6)."""
    return len(data) >= 20 and data[0] < 0x40 and data[4:8] == b"\x21\x12\xa4\x42"


def binding_response(data: bytes, host: str, port: int) -> bytes | None:
    """The success response to a Binding request from ``host``:``port``, or None for anything
    else (a response, an indication, a malformed or oversized message)."""
    if not looks_like_stun(data) or len(data) > _MAX_REQUEST:
        return None
    kind, length, _, txid = _HEADER.unpack_from(data)
    if kind != _BINDING_REQUEST or length != len(data) - 20 or length % 4:
        return None
    # Comprehension-required attributes (type < 0x8000) we do not know: RFC 5389 §7.3.1 wants
    # a 420; a keepalive never carries any, so such a request is simply not answered.
    offset = 20
    while offset < len(data):
        if offset + 4 > len(data):
            return None
        atype, alen = struct.unpack_from("!HH", data, offset)
        if atype < 0x8000:
            return None
        offset += 4 + alen + (-alen % 4)
    if offset != len(data):
        return None
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    xport = port ^ (MAGIC_COOKIE >> 16)
    if ip.version == 4:
        xaddr = int(ip) ^ MAGIC_COOKIE
        value = struct.pack("!BBHI", 0, 1, xport, xaddr)
    else:
        mask = int.from_bytes(struct.pack("!I", MAGIC_COOKIE) + txid, "big")
        value = struct.pack("!BBH", 0, 2, xport) + (int(ip) ^ mask).to_bytes(16, "big")
    attr = struct.pack("!HH", _XOR_MAPPED_ADDRESS, len(value)) + value
    # FINGERPRINT (RFC 5389 §15.5): CRC-32 of the message up to it, length counting it.
    head = _HEADER.pack(_BINDING_SUCCESS, len(attr) + 8, MAGIC_COOKIE, txid)
    crc = (zlib.crc32(head + attr) ^ _FINGERPRINT_XOR) & 0xFFFFFFFF
    return head + attr + struct.pack("!HHI", _FINGERPRINT, 4, crc)
