"""The sockets a scenario run talks through: one UDP socket, or TCP connections.

Theory of operation
-------------------
Both channels feed received messages to a ``deliver(data, source)`` callback and take
``send(data, dest)``.  UDP (SIPp's ``-t u1``) is one socket.  TCP (SIPp's ``-t t1``) listens
on the local port, and keeps one connection per remote address: the connection a request
came on carries the answers back (RFC 3261 §18.2.2), and the first message to an address
without one opens it (messages wait while it connects; if it cannot connect they are dropped
and counted in ``connect_failures``).  Streams are cut into messages by Content-Length
(the transport's :class:`~sipha.sip.StreamParser`, frames only); a stream that cannot be
framed is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sipha.sip import SipParseError, StreamParser

__all__ = ["Channel", "TcpChannel", "UdpChannel"]

log = logging.getLogger(__name__)

Address = tuple[str, int]
Deliver = Callable[[bytes, Address], None]
_MAX_PENDING = 10_000  # messages waiting for one connection to open


def _address(value: Any) -> Address:
    return str(value[0]), int(value[1])


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.deliver(data, _address(addr))


class UdpChannel:
    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver
        self.transport: asyncio.DatagramTransport | None = None
        self.connect_failures = 0

    async def open(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(lambda d, a: self.deliver(d, a)), local_addr=(host, port))
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes, dest: Address) -> None:
        if self.transport is not None:
            with contextlib.suppress(OSError):
                self.transport.sendto(data, dest)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Conn(asyncio.Protocol):
    def __init__(self, channel: TcpChannel, peer: Address | None) -> None:
        self.channel = channel
        self.peer = peer
        self.framer = StreamParser()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.peer is None:
            self.peer = _address(transport.get_extra_info("peername"))
        self.channel.conns[self.peer] = self

    def data_received(self, data: bytes) -> None:
        framer = self.framer
        framer.feed(data)
        messages: list[bytes] = []
        try:
            while (frame := framer.next_frame()) is not None:
                messages.append(frame)
        except SipParseError as exc:
            # Framing is lost (RFC 3261 §18.3): what was framed before still counts.
            log.info("closing TCP connection from %s: %s", self.peer, exc)
            self.channel.framing_errors += 1
            if self.transport is not None:
                self.transport.close()
        assert self.peer is not None
        for msg in messages:
            self.channel.deliver(msg, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.channel.conns.get(self.peer) is self:
            del self.channel.conns[self.peer]


class TcpChannel:
    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver
        self.conns: dict[Address, _Conn] = {}
        self.pending: dict[Address, list[bytes]] = {}
        self.server: asyncio.AbstractServer | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.local_host = ""
        self.connect_failures = 0
        self.framing_errors = 0

    async def open(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        self.local_host = host
        self.server = await loop.create_server(lambda: _Conn(self, None), host, port)
        return int(self.server.sockets[0].getsockname()[1])

    def send(self, data: bytes, dest: Address) -> None:
        conn = self.conns.get(dest)
        if conn is not None and conn.transport is not None:
            conn.transport.write(data)
            return
        waiting = self.pending.setdefault(dest, [])
        if len(waiting) < _MAX_PENDING:
            waiting.append(data)
        if len(waiting) == 1:
            task = asyncio.get_running_loop().create_task(self._connect(dest))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _connect(self, dest: Address) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(5.0):
                await loop.create_connection(lambda: _Conn(self, dest), dest[0], dest[1],
                                             local_addr=(self.local_host, 0))
        except (OSError, TimeoutError) as exc:
            log.info("cannot connect to %s:%d: %s", dest[0], dest[1], exc)
            self.connect_failures += len(self.pending.pop(dest, []))
            return
        conn = self.conns.get(dest)
        for data in self.pending.pop(dest, []):
            if conn is not None and conn.transport is not None:
                conn.transport.write(data)

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for conn in list(self.conns.values()):
            if conn.transport is not None:
                conn.transport.close()
        if self.server is not None:
            self.server.close()


Channel = UdpChannel | TcpChannel
