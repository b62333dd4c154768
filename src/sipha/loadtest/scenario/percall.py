"""UDP sockets (SIPp's ``-t u1``), sockets of their own for calls (``-t un`` and ``-t tn``),
and source-IP spreading.

Theory of operation
-------------------
The engine asks the runner for a client call's local address when it creates the call
(``ScenarioEngine.bind_call(number)``), before the first message is rendered, so that
``[local_ip]`` and ``[local_port]`` name the call's own socket; it lists the addresses of ended
calls in ``released``.  Binding is synchronous (a plain non-blocking socket), which is what
lets the engine stay sans-IO.

* :class:`UdpPool` has one shared UDP socket per local address (calls take the addresses in
  turn: several ``--local-ip`` spread the source addresses; one address is SIPp's ``-t u1``),
  plain non-blocking sockets drained in batches (cheaper per datagram than an asyncio
  ``DatagramProtocol``), and, with ``per_call``
  (``-t un``), a socket of its own for each call, closed when the call ends.
* :class:`TcpPerCall` (``-t tn``) keeps the run's :class:`~.channels.TcpChannel` (its listener
  and its connections) and opens one more connection per call, from a socket bound before the
  call's first message: the messages wait while it connects.

A socket that cannot be bound (the process is out of file descriptors) leaves the call on the
shared socket, counted in ``bind_failures``; the number of per-call sockets is bounded by the
calls in progress (``-l`` bounds those).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from sipha.loadtest.scenario.channels import TcpChannel
from sipha.sip import SipParseError, StreamParser
from sipha.transport.endpoint import SOCKET_BUFFER

__all__ = ["SocketOptions", "TcpPerCall", "UdpPool"]

log = logging.getLogger(__name__)

Address = tuple[str, int]
Deliver = Callable[[bytes, Address], None]
_BATCH = 256
_MAX_PENDING = 1000


@dataclass(frozen=True, slots=True)
class SocketOptions:
    """SIPp's -t un/tn (``per_call``), several local addresses, and its TCP reconnection
    options (-max_reconnect: None keeps reopening a lost connection on the next message)."""

    per_call: bool = False
    local_ips: tuple[str, ...] = ()
    max_reconnect: int | None = None
    reconnect_sleep: float = 1.0
    reconnect_close: bool = True


def _bound(kind: socket.SocketKind, ip: str, port: int, *, shared: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, kind)
    try:
        if shared:
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        sock.bind((ip, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _address(sock: socket.socket) -> Address:
    name = sock.getsockname()
    return str(name[0]), int(name[1])


class UdpPool:
    """UDP over several local addresses and/or one socket per call (see the module)."""

    def __init__(self, deliver: Deliver, ips: list[str], *, per_call: bool) -> None:
        if not ips:
            raise ValueError("at least one local address")
        self.deliver = deliver
        self.ips = ips
        self.per_call = per_call
        self.shared: dict[str, socket.socket] = {}
        self.socks: dict[Address, socket.socket] = {}
        self.bind_failures = 0
        self.send_errors = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def open(self, host: str, port: int) -> int:
        """Bind the shared sockets (the first address's on ``port``); return that port."""
        self._loop = asyncio.get_running_loop()
        first = 0
        for ip in self.ips:
            sock = _bound(socket.SOCK_DGRAM, ip, port or first, shared=True)
            first = first or _address(sock)[1]
            self.shared[ip] = sock
            self._watch(sock)
        return first

    def _watch(self, sock: socket.socket) -> None:
        assert self._loop is not None
        self._loop.add_reader(sock.fileno(), self._readable, sock)
        self.socks[_address(sock)] = sock

    def _readable(self, sock: socket.socket) -> None:
        for _ in range(_BATCH):
            try:
                data, peer = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error from an earlier send: the timers handle the loss
            self.deliver(data, (str(peer[0]), int(peer[1])))

    def bind_call(self, number: int) -> Address | None:
        ip = self.ips[(number - 1) % len(self.ips)]
        if not self.per_call:
            return _address(self.shared[ip])
        try:
            sock = _bound(socket.SOCK_DGRAM, ip, 0)
        except OSError as exc:
            self.bind_failures += 1
            if self.bind_failures == 1:
                log.warning("cannot bind a socket for call %d (%s): it uses the shared one",
                            number, exc)
            return None
        self._watch(sock)
        return _address(sock)

    def send(self, data: bytes, dest: Address, source: Address | None = None) -> None:
        sock = self.socks.get(source) if source is not None else None
        if sock is None:
            sock = self.shared[self.ips[0]]
        try:
            sock.sendto(data, dest)
        except OSError:
            self.send_errors += 1

    def release(self, addr: Address) -> None:
        """A call ended: close its own socket (shared ones stay)."""
        sock = self.socks.get(addr)
        if sock is None or sock in self.shared.values():
            return
        del self.socks[addr]
        if self._loop is not None:
            self._loop.remove_reader(sock.fileno())
        sock.close()

    def close(self) -> None:
        for sock in list(self.socks.values()):
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            sock.close()
        self.socks.clear()


class _CallConn(asyncio.Protocol):
    def __init__(self, owner: TcpPerCall, peer: Address) -> None:
        self.owner = owner
        self.peer = peer
        self.framer = StreamParser()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.framer.feed(data)
        try:
            while (frame := self.framer.next_frame()) is not None:
                self.owner.deliver(frame, self.peer)
        except SipParseError:
            if self.transport is not None:  # framing lost (RFC 3261 §18.3)
                self.transport.close()


class TcpPerCall:
    """``-t tn``: the run's TCP channel plus a connection per client call."""

    def __init__(self, deliver: Deliver, ips: list[str], shared: TcpChannel) -> None:
        self.deliver = deliver
        self.ips = ips
        self.shared = shared
        self.socks: dict[Address, socket.socket] = {}
        self.conns: dict[Address, _CallConn] = {}
        self.pending: dict[Address, list[bytes]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.bind_failures = 0
        self.connect_failures = 0

    async def open(self, host: str, port: int) -> int:
        return await self.shared.open(host, port)

    def bind_call(self, number: int) -> Address | None:
        try:
            sock = _bound(socket.SOCK_STREAM, self.ips[(number - 1) % len(self.ips)], 0)
        except OSError:
            self.bind_failures += 1
            return None
        addr = _address(sock)
        self.socks[addr] = sock
        return addr

    def send(self, data: bytes, dest: Address, source: Address | None = None) -> None:
        if source is None or source not in self.socks:
            self.shared.send(data, dest)
            return
        conn = self.conns.get(source)
        if conn is not None and conn.transport is not None:
            conn.transport.write(data)
            return
        waiting = self.pending.setdefault(source, [])
        if len(waiting) < _MAX_PENDING:
            waiting.append(data)
        if len(waiting) == 1 and source not in self.conns:
            task = asyncio.get_running_loop().create_task(self._connect(source, dest))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _connect(self, source: Address, dest: Address) -> None:
        loop = asyncio.get_running_loop()
        sock = self.socks[source]
        try:
            async with asyncio.timeout(5.0):
                await loop.sock_connect(sock, dest)
                _, proto = await loop.create_connection(lambda: _CallConn(self, dest), sock=sock)
        except (OSError, TimeoutError) as exc:
            log.info("cannot connect %s:%d to %s:%d: %s", *source, *dest, exc)
            self.connect_failures += len(self.pending.pop(source, []))
            return
        assert isinstance(proto, _CallConn)
        if source not in self.socks:  # the call ended while connecting
            if proto.transport is not None:
                proto.transport.close()
            return
        self.conns[source] = proto
        for data in self.pending.pop(source, []):
            if proto.transport is not None:
                proto.transport.write(data)

    def release(self, addr: Address) -> None:
        sock = self.socks.pop(addr, None)
        conn = self.conns.pop(addr, None)
        self.pending.pop(addr, None)
        if conn is not None and conn.transport is not None:
            conn.transport.close()
        elif sock is not None:
            sock.close()

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for addr in list(self.socks):
            self.release(addr)
        self.shared.close()
