"""The TCP connections a scenario run talks through (UDP sockets: :mod:`.percall`).

Theory of operation
-------------------
The channel feeds received messages to a ``deliver(data, source)`` callback and takes
``send(data, dest)``.  TCP (SIPp's ``-t t1``) listens
on the local port, and keeps one connection per remote address: the connection a request
came on carries the answers back (RFC 3261 §18.2.2), and the first message to an address
without one opens it (messages wait while it connects; if it cannot connect they are dropped
and counted in ``connect_failures``).  Streams are cut into messages by Content-Length
(the transport's :class:`~sipha.sip.StreamParser`, frames only); a stream that cannot be
framed is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sipha.sip import SipParseError, StreamParser

__all__ = ["TcpChannel"]

log = logging.getLogger(__name__)

Address = tuple[str, int]
Deliver = Callable[[bytes, Address], None]
_MAX_PENDING = 10_000  # messages waiting for one connection to open


def _address(value: Any) -> Address:
    return str(value[0]), int(value[1])


class _Conn(asyncio.Protocol):
    def __init__(self, channel: TcpChannel, peer: Address | None) -> None:
        self.channel = channel
        self.peer = peer
        self.outgoing = peer is not None  # we connected: SIPp's reconnect rules apply
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
            if self.outgoing and not self.channel.closing:
                self.channel.lost(self.peer)


class TcpChannel:
    """TCP, one connection per peer.  A connection we opened that closes is opened again
    when a message goes to that peer; with ``max_reconnect`` (SIPp's -max_reconnect) at most
    that many times per peer, each ``reconnect_sleep`` seconds after the loss, and ``on_lost``
    hears of each loss (the runner fails that peer's calls: SIPp's -reconnect_close); past
    the limit, messages to the peer are dropped and counted in ``connect_failures``."""

    def __init__(self, deliver: Deliver, *, on_lost: Callable[[Address], None] | None = None,
                 max_reconnect: int | None = None, reconnect_sleep: float = 1.0) -> None:
        self.deliver = deliver
        self.on_lost = on_lost
        self.max_reconnect = max_reconnect
        self.reconnect_sleep = reconnect_sleep
        self.reconnects: dict[Address, int] = {}
        self.given_up: set[Address] = set()
        self.connecting: set[Address] = set()
        self.closing = False
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

    def send(self, data: bytes, dest: Address, source: Address | None = None) -> None:
        conn = self.conns.get(dest)
        if conn is not None and conn.transport is not None:
            conn.transport.write(data)
            return
        if dest in self.given_up:
            self.connect_failures += 1
            return
        waiting = self.pending.setdefault(dest, [])
        if len(waiting) < _MAX_PENDING:
            waiting.append(data)
        if dest not in self.connecting:
            self._start_connect(dest, 0.0)

    def _start_connect(self, dest: Address, delay: float) -> None:
        self.connecting.add(dest)
        task = asyncio.get_running_loop().create_task(self._connect(dest, delay))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def lost(self, dest: Address) -> None:
        """A connection we opened to ``dest`` closed (see the class docstring)."""
        if self.max_reconnect is None:
            return  # reopened by the next message, as before
        if self.on_lost is not None:
            self.on_lost(dest)
        self._retry(dest)

    def _retry(self, dest: Address) -> None:
        assert self.max_reconnect is not None
        n = self.reconnects[dest] = self.reconnects.get(dest, 0) + 1
        if n > self.max_reconnect:
            log.warning("TCP connection to %s:%d lost %d times: giving up (--max-reconnect %d)",
                        dest[0], dest[1], n, self.max_reconnect)
            self.given_up.add(dest)
            self.connect_failures += len(self.pending.pop(dest, []))
        elif dest not in self.connecting:
            self._start_connect(dest, self.reconnect_sleep)

    async def _connect(self, dest: Address, delay: float = 0.0) -> None:
        try:
            opened = await self._open(dest, delay)
        finally:
            self.connecting.discard(dest)
        if not opened and self.max_reconnect is not None and dest in self.reconnects:
            self._retry(dest)  # a failed reconnection is one of the -max_reconnect

    async def _open(self, dest: Address, delay: float) -> bool:
        loop = asyncio.get_running_loop()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            async with asyncio.timeout(5.0):
                await loop.create_connection(lambda: _Conn(self, dest), dest[0], dest[1],
                                             local_addr=(self.local_host, 0))
        except (OSError, TimeoutError) as exc:
            log.info("cannot connect to %s:%d: %s", dest[0], dest[1], exc)
            if self.max_reconnect is None or dest not in self.reconnects:
                self.connect_failures += len(self.pending.pop(dest, []))
            return False
        conn = self.conns.get(dest)
        for data in self.pending.pop(dest, []):
            if conn is not None and conn.transport is not None:
                conn.transport.write(data)
        return True

    def close(self) -> None:
        self.closing = True
        for task in self.tasks:
            task.cancel()
        for conn in list(self.conns.values()):
            if conn.transport is not None:
                conn.transport.close()
        if self.server is not None:
            self.server.close()

