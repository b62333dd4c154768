"""RFC 5626 keepalives against a running dispatcher: a STUN binding request on its UDP SIP port
learns the address it came from (§8, RFC 5389), a CRLFCRLF ping on a TCP flow gets its CRLF
pong (§4.4.1), and SIP keeps working on both sockets in between."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import pytest

from sipha.transport.stun import MAGIC_COOKIE

from .cluster import cluster

pytestmark = pytest.mark.timeout(60)

OPTIONS = (
    "OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/{t} {host}:{me};branch=z9hG4bKka{n}\r\n"
    "From: <sip:ka@{host}>;tag=1\r\nTo: <sip:{host}:{port}>\r\nCall-ID: ka{n}\r\n"
    "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


def test_stun_binding_and_crlf_pong_on_the_sip_ports(tmp_path: Path) -> None:
    with cluster(tmp_path, [1], transports=("udp", "tcp")) as c:
        assert c.dispatcher is not None
        host, port = "127.0.0.1", c.dispatcher.sip_port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            udp.settimeout(5)
            me = udp.getsockname()[1]
            txid = os.urandom(12)
            udp.sendto(struct.pack("!HHI12s", 1, 0, MAGIC_COOKIE, txid), (host, port))
            answer, _ = udp.recvfrom(2048)
            kind, _, cookie, tx = struct.unpack_from("!HHI12s", answer)
            assert (kind, cookie, tx) == (0x0101, MAGIC_COOKIE, txid)
            family, xport, xaddr = struct.unpack_from("!xBHI", answer, 24)
            assert family == 1
            assert xport ^ (MAGIC_COOKIE >> 16) == me
            assert socket.inet_ntoa(struct.pack("!I", xaddr ^ MAGIC_COOKIE)) == host
            udp.sendto(OPTIONS.format(host=host, port=port, t="UDP", me=me, n=1).encode(),
                       (host, port))
            assert udp.recvfrom(65535)[0].startswith(b"SIP/2.0 200")
        with socket.create_connection((host, port), timeout=5) as tcp:
            me = tcp.getsockname()[1]
            tcp.sendall(b"\r\n\r\n")
            assert tcp.recv(16) == b"\r\n"
            tcp.sendall(OPTIONS.format(host=host, port=port, t="TCP", me=me, n=2).encode())
            assert tcp.recv(65535).startswith(b"SIP/2.0 200")
            tcp.sendall(b"\r\n\r\n")
            assert tcp.recv(16) == b"\r\n"
        transport = c.dispatcher.get("/status", c.token)["transport"]
        assert transport["stun_answered"] == 1
        assert transport["pongs"] == 2
