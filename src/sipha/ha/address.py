"""Taking over the service address: ``local``, ``ip`` and ``external`` modes.

* ``local`` (one host): the service address is a loopback address such as 127.0.0.10. Holding
  it means having the dispatcher's UDP and TCP sockets bound on it; the standby binds them when
  promoted, retrying every few ms until the old holder's sockets are gone. Before each try a
  test bind checks that nobody still has the port (`port_free`: Linux lets two SO_REUSEADDR
  UDP sockets share a port, which would split the traffic silently; for TCP only a listener
  counts, not the dead holder's lingering connections).
* ``ip`` (several hosts, or network namespaces): ``ip addr add ADDR/32 dev IF`` on promotion,
  then gratuitous ARP so the neighbours' caches move at once (RFC 5227 §3 ARP Announcement,
  sent as both request and reply, as ``arping -U``/``-A`` do), ``ip addr del`` on demotion.
  An IPv6 address is added ``/128 nodad`` (Duplicate Address Detection would keep it
  tentative, unusable, for a second: the fence already made sure nobody else has it) and
  announced with unsolicited Neighbour Advertisements to all nodes (RFC 4861 §7.2.6, Override
  set, as keepalived does). The dispatcher's sockets are bound from the start with
  IP_FREEBIND.
* ``external``: keepalived or Pacemaker moves the address; sipha follows ``ctl promote``.

Every owner has the same two coroutines; ``acquire`` retries until it succeeds or is cancelled,
``release`` never raises for an address that is already gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from sipha.transport import ListenSpec

__all__ = [
    "AddressMode",
    "AddressOwner",
    "ExternalAddress",
    "IpAddress",
    "LocalAddress",
    "garp_frames",
    "port_free",
    "unsolicited_na",
]

log = logging.getLogger("sipha.ha.address")

Hook = Callable[[], Awaitable[None]]


class AddressMode(enum.Enum):
    LOCAL = "local"
    IP = "ip"
    EXTERNAL = "external"


class AddressOwner(Protocol):
    async def acquire(self) -> None:
        """Take the address; retry until done (cancel to give up)."""

    async def release(self) -> None:
        """Give the address up; idempotent."""


def port_free(spec: ListenSpec) -> bool:
    """True if no live socket holds ``spec``.

    UDP: a bind without SO_REUSEADDR must succeed (two SO_REUSEADDR UDP sockets may share a
    port and would split the traffic). TCP: a bind *with* SO_REUSEADDR, as the dispatcher's
    own listener binds: it fails only while another socket listens there. Without it, the
    connections the dead active had open (FIN_WAIT, TIME_WAIT: the kernel keeps them for up
    to a minute) would hold the port and the takeover would wait for them.
    """
    family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
    kind = socket.SOCK_DGRAM if spec.transport == "udp" else socket.SOCK_STREAM
    with socket.socket(family, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((spec.host, spec.port))
        except OSError:
            return False
    return True


class LocalAddress:
    """Holding = the dispatcher's sockets bound on the address (``bind``/``unbind`` hooks)."""

    def __init__(
        self, specs: Sequence[ListenSpec], bind: Hook, unbind: Hook, *, retry: float = 0.005
    ) -> None:
        self.specs = list(specs)
        self.bind = bind
        self.unbind = unbind
        self.retry = retry
        self.attempts = 0

    async def acquire(self) -> None:
        while True:
            self.attempts += 1
            if all(port_free(s) for s in self.specs if s.port):
                try:
                    await self.bind()
                    return
                except OSError as exc:
                    log.debug("bind failed (%s); retrying", exc)
            await asyncio.sleep(self.retry)

    async def release(self) -> None:
        await self.unbind()


async def _run(*argv: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace").strip()


def garp_frames(mac: bytes, address: str) -> list[bytes]:
    """Ethernet frames announcing ``address`` at ``mac``: an ARP request and an ARP reply,
    both with sender = target = the address (RFC 5227 §3, RFC 5944 §4.6)."""
    ip = ipaddress.IPv4Address(address).packed
    bcast = b"\xff" * 6
    frames = []
    for op in (1, 2):
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, mac, ip,
                          bcast if op == 2 else b"\x00" * 6, ip)
        frames.append(bcast + mac + struct.pack("!H", 0x0806) + arp)
    return frames


def send_garp(device: str, address: str, count: int = 2) -> int:
    """Send gratuitous ARP for ``address`` out of ``device`` (needs CAP_NET_RAW); frames sent."""
    mac_text = Path(f"/sys/class/net/{device}/address").read_text().strip()
    mac = bytes.fromhex(mac_text.replace(":", ""))
    sent = 0
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806)) as s:
        s.bind((device, 0))
        for _ in range(count):
            for frame in garp_frames(mac, address):
                s.send(frame)
                sent += 1
    return sent


_ICMPV6_NA = 136
_NA_OVERRIDE = 0x20000000
_OPT_TARGET_LLA = 2


def unsolicited_na(mac: bytes, address: str) -> bytes:
    """The ICMPv6 body of an unsolicited Neighbour Advertisement of ``address`` at ``mac``:
    Router and Solicited clear, Override set (RFC 4861 §4.4, §7.2.6), with the Target
    Link-Layer Address option. The checksum is left 0: the kernel fills it in for an ICMPv6
    raw socket (RFC 3542 §3.1)."""
    target = ipaddress.IPv6Address(address).packed
    return struct.pack("!BBHI16sBB6s", _ICMPV6_NA, 0, 0, _NA_OVERRIDE, target,
                       _OPT_TARGET_LLA, 1, mac)


def send_unsolicited_na(device: str, address: str, count: int = 2) -> int:
    """Send unsolicited Neighbour Advertisements for ``address`` to ff02::1 on ``device``
    (needs CAP_NET_RAW and the address already on the device); messages sent."""
    mac_text = Path(f"/sys/class/net/{device}/address").read_text().strip()
    body = unsolicited_na(bytes.fromhex(mac_text.replace(":", "")), address)
    index = socket.if_nametoindex(device)
    sent = 0
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as s:
        # RFC 4861 §7.1.2: a receiver drops an NA whose hop limit is not 255.
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        s.bind((address, 0, 0, index))
        for _ in range(count):
            s.sendto(body, ("ff02::1", 0, 0, index))
            sent += 1
    return sent


class IpAddress:
    """``ip addr add/del`` of ``address/prefix`` on ``device``, announced with gratuitous ARP
    (IPv4) or unsolicited Neighbour Advertisements (IPv6). ``prefix`` 0: a host address (32
    or 128)."""

    def __init__(
        self, address: str, device: str, *, prefix: int = 0, retry: float = 0.05,
        garp_count: int = 2,
    ) -> None:
        self.address = address
        self.device = device
        self.v6 = ipaddress.ip_address(address).version == 6
        self.prefix = prefix or (128 if self.v6 else 32)
        self.retry = retry
        self.garp_count = garp_count
        self.garps_sent = 0

    async def acquire(self) -> None:
        cidr = f"{self.address}/{self.prefix}"
        while True:
            # `replace` succeeds whether or not the address is already there.
            extra = ("nodad",) if self.v6 else ()
            rc, out = await _run("ip", "addr", "replace", cidr, "dev", self.device, *extra)
            if rc == 0:
                break
            log.warning("ip addr replace %s dev %s failed: %s; retrying", cidr, self.device, out)
            await asyncio.sleep(self.retry)
        announce = send_unsolicited_na if self.v6 else send_garp
        try:
            self.garps_sent += await asyncio.to_thread(
                announce, self.device, self.address, self.garp_count
            )
        except OSError as exc:
            log.warning("announcing %s on %s failed: %s", self.address, self.device, exc)

    async def release(self) -> None:
        rc, out = await _run("ip", "addr", "del", f"{self.address}/{self.prefix}",
                             "dev", self.device)
        if rc != 0 and "Cannot assign" not in out:
            log.warning("ip addr del %s: %s", self.address, out)


class ExternalAddress:
    """keepalived or Pacemaker owns the address: nothing to do but follow."""

    async def acquire(self) -> None:
        return None

    async def release(self) -> None:
        return None


async def release_quietly(owner: AddressOwner) -> None:
    with contextlib.suppress(OSError):
        await owner.release()
