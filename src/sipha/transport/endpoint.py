"""asyncio SIP endpoints: UDP and TCP listeners that hand parsed messages to one callback.

Theory of operation
-------------------
A :class:`SipEndpoint` owns every socket of a node. Bytes that arrive are parsed at once (the
parser is synchronous and fast); a good message goes to the node's ``on_message(msg, peer)``
callback, a malformed request that can still be answered gets a 400 straight from here, and
everything else is dropped and counted. Nothing a peer sends can raise out of the receive path:
that is the boundary where the SIP core's one error contract is caught.

Sending is fire-and-forget, as SIP over UDP is: ``send(data, peer)`` writes a datagram, or
writes to the TCP connection to that peer, opening one when there is none (RFC 3261 §18.2.2:
responses reuse the connection the request came on; requests reuse any open connection to the
peer). A connection that cannot be opened is reported to ``on_send_error`` so a transaction can
fail over at once instead of waiting for its timer.

TCP connections are bounded: a cap on their number and on those from one source address, on
the bytes buffered for one incomplete message (the parser's limit), on the time one message may
take to arrive once its first byte came (``tcp_message_timeout``: a peer trickling a byte at a
time, slowloris, is cut off however steadily it trickles), and an idle timeout that only whole
messages reset. One periodic task sweeps both timeouts. Datagrams above ``max_datagram_size``
are dropped unread and counted: a node does not parse, or keep, 64 KB of a stranger's bytes.

TLS (``tls:`` listeners, peers with transport ``tls``) is the TCP machinery above with asyncio's
ssl support underneath: same framing, reuse, limits and idle timeout; the contexts come from
:mod:`sipha.transport.tls`. An outgoing connection whose handshake fails (the peer's
certificate does not verify) is reported like a refused connection and counted. A handshake
on a listener is bounded by the TLS ``handshake_timeout``; the connection cap applies once it
has succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from sipha.sip import Request, Response, SipParseError, StreamParser, parse_message
from sipha.sip.parser import DEFAULT_LIMITS, Limits, salvage
from sipha.sip.reject import reject_malformed

from .address import ListenSpec, Peer
from .stun import binding_response, looks_like_stun
from .tls import TlsConfig, TlsConfigError, client_context, server_context

log = logging.getLogger(__name__)

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
SOCKET_BUFFER = 8 * 1024 * 1024

# The malformed-input counters are keyed by the kind of error, never by what the peer wrote:
# a key quoting attacker bytes would let every new datagram add an entry for ever.
MAX_REASONS = 64


def reason_key(reason: str) -> str:
    """The kind of a parse error: its reason up to the first quoted or numeric detail,
    at most three words (``bad method 'X'`` -> ``bad method``)."""
    words: list[str] = []
    for word in reason.split(" ", 3)[:3]:
        if not word or not word[0].isalpha() or not word.isprintable():
            break
        words.append(word[:24])
    return " ".join(words) or "other"


MessageCallback = Callable[[Request | Response, Peer], None]
SendErrorCallback = Callable[[Peer, bytes, Exception], None]


@dataclass(slots=True)
class TransportCounters:
    """What the receive path did; exported by the nodes' status and metrics endpoints."""

    received: int = 0
    sent: int = 0
    malformed: int = 0
    answered_400: int = 0
    dropped: int = 0
    send_errors: int = 0
    tcp_accepted: int = 0
    tcp_refused: int = 0
    tcp_refused_per_source: int = 0
    tcp_closed_idle: int = 0
    tcp_closed_slow: int = 0
    oversized_datagrams: int = 0
    tcp_closed_bad_framing: int = 0
    keepalives: int = 0
    tls_failures: int = 0  # outgoing TLS handshakes that failed (certificate checks included)
    # Handshakes begun on tls: listeners. asyncio reports a failed one to no one (its debug
    # log only), so failures are this minus the TLS connections accepted (tcp_accepted).
    tls_handshakes: int = 0
    stun_answered: int = 0  # RFC 5626 §8 binding requests answered (outbound keepalives)
    pongs: int = 0  # CRLF answers to CRLFCRLF pings on streams (RFC 5626 §4.4.1)
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class TransportConfig:
    limits: Limits = DEFAULT_LIMITS
    max_tcp_connections: int = 4096
    # Inbound connections from one IP address; a proxy or SBC in front of us needs a few,
    # a phone one.
    max_tcp_per_source: int = 128
    tcp_idle_timeout: float = 120.0
    # From the first byte of a message to its last (header and body).
    tcp_message_timeout: float = 30.0
    # RFC 3261 §18.1.1 sends a request over TCP once it nears the path MTU; a datagram of more
    # than 32 KiB is not a SIP peer's, and each would cost a 64 KB buffer while it is parsed.
    max_datagram_size: int = 32 * 1024
    tcp_connect_timeout: float = 2.0
    freebind: bool = False
    tls: TlsConfig = field(default_factory=TlsConfig)
    # An edge proxy answers outbound keepalives (RFC 5626 §4.4.1, §8): STUN binding requests
    # on its UDP SIP ports, CRLFCRLF pings with a CRLF pong on streams.
    outbound_keepalives: bool = False


def make_socket(spec: ListenSpec, *, freebind: bool = False) -> socket.socket:
    """A bound, non-blocking socket for ``spec`` with large buffers.

    ``freebind`` lets a node bind a service address it does not own yet (IP_FREEBIND), so a
    standby dispatcher can start before the address moves to it.
    """
    family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
    kind = socket.SOCK_DGRAM if spec.transport == "udp" else socket.SOCK_STREAM
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if freebind and family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        if kind == socket.SOCK_DGRAM:
            _grow_buffers(sock)
        sock.bind((spec.host, spec.port))
        if kind == socket.SOCK_STREAM:
            sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _grow_buffers(sock: socket.socket) -> None:
    # Bursts of thousands of datagrams must not overflow the kernel queue while the loop is
    # busy: ask for large buffers, forcing past rmem_max when we may (root), else take the max.
    for force, plain in (
        (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF),
        (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF),
    ):
        try:
            if force is None:
                raise OSError
            sock.setsockopt(socket.SOL_SOCKET, force, SOCKET_BUFFER)
        except OSError:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, plain, SOCKET_BUFFER)


class _Receiver:
    """Shared receive path: parse, hand over, or answer 400 / count the drop."""

    __slots__ = ("counters", "endpoint", "keepalives", "limits", "max_datagram", "on_message")

    def __init__(self, endpoint: SipEndpoint) -> None:
        self.endpoint = endpoint
        self.on_message = endpoint.on_message
        self.counters = endpoint.counters
        self.limits = endpoint.config.limits
        self.max_datagram = endpoint.config.max_datagram_size
        self.keepalives = endpoint.config.outbound_keepalives

    def bad(self, err: SipParseError, peer: Peer) -> None:
        c = self.counters
        c.malformed += 1
        reason = reason_key(err.reason)
        reasons = c.reasons
        if reason not in reasons and len(reasons) >= MAX_REASONS:
            reason = "other"
        reasons[reason] = reasons.get(reason, 0) + 1
        answer = reject_malformed(err)
        if answer is None:
            c.dropped += 1
            return
        c.answered_400 += 1
        # Answer the source address, not the Via: never reflect traffic to a third party.
        self.endpoint.send(answer, peer)

    def deliver(self, msg: Request | Response, peer: Peer) -> None:
        try:
            self.on_message(msg, peer)
        except SipParseError as err:
            # A header the node read lazily was malformed.
            if isinstance(msg, Request):
                err = err.with_partial(salvage(msg))
            self.bad(err, peer)
        except Exception:
            # The node's own bug must not stop it from serving the next message.
            self.counters.dropped += 1
            log.exception("handler failed on a message from %s", peer)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, receiver: _Receiver) -> None:
        self.receiver = receiver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's UDP transport does not subclass DatagramTransport; it quacks.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        r = self.receiver
        r.counters.received += 1
        if len(data) > r.max_datagram:
            r.counters.oversized_datagrams += 1
            r.counters.dropped += 1
            return
        if r.keepalives and looks_like_stun(data):  # not a letter: STUN (RFC 7983)
            answer = binding_response(data, addr[0], addr[1])
            if answer is None:
                r.counters.dropped += 1
            elif self.transport is not None:
                r.counters.stun_answered += 1
                self.transport.sendto(answer, addr)
            return
        peer = Peer("udp", addr[0], addr[1])
        try:
            msg = parse_message(data, limits=r.limits)
        except SipParseError as err:
            if not data.strip(b"\r\n \t\x00"):
                r.counters.keepalives += 1  # RFC 5626 CRLF keepalive or empty datagram
                return
            r.bad(err, peer)
            return
        r.deliver(msg, peer)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: nothing to do on a connectionless socket.
        self.receiver.counters.send_errors += 1


class _TcpConnection(asyncio.Protocol):
    def __init__(
        self, endpoint: SipEndpoint, receiver: _Receiver, outbound: bool, kind: str = "tcp"
    ) -> None:
        self.kind = kind  # "tcp" or "tls": the transport of the Peer messages come from
        self.endpoint = endpoint
        self.receiver = receiver
        self.outbound = outbound
        self.parser = StreamParser(limits=receiver.limits)
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        # Whole messages in or out: the idle clock. Bytes of a message still coming do not
        # count, or a peer could hold the connection for ever a byte at a time.
        self.last_activity = time.monotonic()
        # When the first byte of the message now being received came; None between messages.
        self.message_started: float | None = None
        self.counted_source = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport does not subclass asyncio.Transport; it quacks like one.
        tcp = cast(asyncio.Transport, transport)
        self.transport = tcp
        host, port = tcp.get_extra_info("peername")[:2]
        self.peer = Peer(self.kind, host, port)
        ep = self.endpoint
        if not self.outbound:
            if len(ep._tcp) >= ep.config.max_tcp_connections:
                ep.counters.tcp_refused += 1
                tcp.abort()
                return
            from_source = ep._per_source.get(host, 0)
            if from_source >= ep.config.max_tcp_per_source:
                ep.counters.tcp_refused_per_source += 1
                tcp.abort()
                return
            ep._per_source[host] = from_source + 1
            self.counted_source = True
            ep.counters.tcp_accepted += 1
        ep._tcp[(host, port)] = self

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        parser = self.parser
        if data[:4] == b"\r\n\r\n" and parser.buffered == 0 and self.receiver.keepalives:
            # RFC 5626 §4.4.1: a CRLFCRLF ping between messages gets a CRLF pong, and keeps
            # the flow from counting as idle.
            pings = (len(data) - len(data.lstrip(b"\r\n"))) // 4
            data = data.lstrip(b"\r\n")
            self.last_activity = now
            self.receiver.counters.pongs += pings
            if self.transport is not None:
                self.transport.write(b"\r\n" * pings)
            if not data:
                return
        if self.message_started is None:
            self.message_started = now
        completed = False
        parser.feed(data)
        r = self.receiver
        peer = self.peer
        assert peer is not None
        while True:
            try:
                msg = parser.next_message()
            except SipParseError as err:
                r.counters.received += 1
                r.bad(err, peer)
                if parser.broken is not None:
                    r.counters.tcp_closed_bad_framing += 1
                    if self.transport is not None:
                        self.transport.close()
                    return
                continue
            if msg is None:
                break
            completed = True
            r.counters.received += 1
            r.deliver(msg, peer)
        if completed:
            self.last_activity = now
        # What is left is the start of the next message (or nothing, keepalives included).
        if parser.buffered == 0:
            self.message_started = None
        elif completed:
            self.message_started = now

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None:
            ep = self.endpoint
            key = (self.peer.host, self.peer.port)
            if ep._tcp.get(key) is self:
                del ep._tcp[key]
            if self.counted_source:
                self.counted_source = False
                left = ep._per_source.get(self.peer.host, 1) - 1
                if left > 0:
                    ep._per_source[self.peer.host] = left
                else:
                    ep._per_source.pop(self.peer.host, None)

    def write(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        if self.transport is not None:
            self.transport.write(data)


class SipEndpoint:
    """All the sockets of one node. Create, ``await start()``, then ``send`` and ``close``."""

    def __init__(
        self,
        listens: list[ListenSpec],
        on_message: MessageCallback,
        *,
        config: TransportConfig | None = None,
        on_send_error: SendErrorCallback | None = None,
    ) -> None:
        self.listens = list(listens)
        self.on_message = on_message
        self.on_send_error = on_send_error
        self.config = config or TransportConfig()
        self.counters = TransportCounters()
        self._udp: dict[tuple[str, int], asyncio.DatagramTransport] = {}
        # A second handle on each UDP socket (a dup of its fd) for `drain`.
        self._udp_drains: list[tuple[socket.socket, _UdpProtocol]] = []
        self._udp_default: asyncio.DatagramTransport | None = None
        self._tcp: dict[tuple[str, int], _TcpConnection] = {}
        self._per_source: dict[str, int] = {}  # inbound connections by source IP
        self._connecting: dict[tuple[str, int], list[bytes]] = {}
        self._servers: list[asyncio.Server] = []
        self._sweeper: asyncio.Task[None] | None = None
        self.bound: list[ListenSpec] = []
        self._receiver = _Receiver(self)
        self._tls_client: ssl.SSLContext | None = None
        self._tls_warned: set[Peer] = set()  # peers whose failed TLS handshake was logged

    async def start(self) -> None:
        """Bind every listen spec; raises OSError if one cannot be bound."""
        loop = asyncio.get_running_loop()
        try:
            for spec in self.listens:
                sock = make_socket(spec, freebind=self.config.freebind)
                host, port = sock.getsockname()[:2]
                if spec.transport == "udp":
                    drain = socket.socket(fileno=os.dup(sock.fileno()))
                    transport, proto = await loop.create_datagram_endpoint(
                        lambda: _UdpProtocol(self._receiver), sock=sock
                    )
                    self._udp_drains.append((drain, proto))
                    udp = transport
                    self._udp[(host, port)] = udp
                    if self._udp_default is None:
                        self._udp_default = udp
                else:
                    tls = server_context(self.config.tls) if spec.transport == "tls" else None
                    server = await loop.create_server(
                        functools.partial(self._accepted, spec.transport),
                        sock=sock,
                        ssl=tls,
                        ssl_handshake_timeout=self.config.tls.handshake_timeout if tls else None,
                    )
                    self._servers.append(server)
                self.bound.append(ListenSpec(spec.transport, host, port))
        except BaseException:
            await self.close()
            raise
        if self._servers:
            self._sweeper = asyncio.create_task(self._sweep_idle())

    def _accepted(self, kind: str) -> _TcpConnection:
        # Called at accept, before any TLS handshake.
        if kind == "tls":
            self.counters.tls_handshakes += 1
        return _TcpConnection(self, self._receiver, outbound=False, kind=kind)

    def drain(self, limit: int = 2000) -> int:
        """Receive, now, every datagram already queued on the UDP sockets; return how many.

        A node calls this before judging a peer's silence on a timer: after a stall of its
        own (a busy callback, the OS scheduling others), the event loop runs due timers
        before it polls the sockets, so an answer waiting in our buffer would look missing.
        """
        n = 0
        for sock, proto in self._udp_drains:
            recv = sock.recvfrom
            while n < limit:
                try:
                    data, addr = recv(65535)
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionError:
                    n += 1
                    continue  # a queued ICMP error: the next datagram may be fine
                except OSError:
                    break
                n += 1
                proto.datagram_received(data, addr)
        return n

    def local(self, transport: str = "udp") -> ListenSpec:
        """The first bound address of that transport (its real port when 0 was asked)."""
        for spec in self.bound:
            if spec.transport == transport:
                return spec
        raise LookupError(f"no {transport} listener")

    def send(self, data: bytes, peer: Peer) -> None:
        """Send bytes to ``peer``; never raises for network trouble (counted, reported)."""
        self.counters.sent += 1
        if peer.transport == "udp":
            t = self._udp_default
            if t is None:
                self._report(peer, data, OSError("no UDP listener to send from"))
                return
            try:
                t.sendto(data, (peer.host, peer.port))
            except (OSError, ValueError) as exc:
                # ValueError: uvloop refuses a host name (it never resolves on the loop).
                self._report(peer, data, exc)
            return
        key = (peer.host, peer.port)
        conn = self._tcp.get(key)
        if conn is not None and conn.transport is not None and not conn.transport.is_closing():
            if peer.transport == "tls" and conn.kind != "tls":
                # What must go over TLS never goes out on a plain connection to that address.
                self._report(peer, data, OSError(f"a plain TCP connection to {peer} is open"))
                return
            conn.write(data)
            return
        queued = self._connecting.get(key)
        if queued is not None:
            queued.append(data)
            return
        self._connecting[key] = [data]
        asyncio.get_running_loop().create_task(self._connect(peer))

    async def _connect(self, peer: Peer) -> None:
        key = (peer.host, peer.port)
        loop = asyncio.get_running_loop()
        kind = "tls" if peer.transport == "tls" else "tcp"
        try:
            tls = self._client_context() if kind == "tls" else None
            async with asyncio.timeout(self.config.tcp_connect_timeout):
                _, proto = await loop.create_connection(
                    lambda: _TcpConnection(self, self._receiver, outbound=True, kind=kind),
                    peer.host,
                    peer.port,
                    # RFC 5922 §7.2: the certificate must name the host we dialled.
                    ssl=tls,
                    server_hostname=peer.host if tls else None,
                )
        except (OSError, TimeoutError, TlsConfigError) as exc:
            if kind == "tls" and isinstance(exc, ssl.SSLError | TlsConfigError):
                self.counters.tls_failures += 1
                self._warn_tls(peer, exc)
            for data in self._connecting.pop(key, []):
                self._report(peer, data, exc)
            return
        assert isinstance(proto, _TcpConnection)
        # RFC 3261 §18: the connection is indexed by the peer's address, so responses and
        # later requests to it reuse this connection.
        self._tcp[key] = proto
        for data in self._connecting.pop(key, []):
            proto.write(data)

    def _warn_tls(self, peer: Peer, exc: Exception) -> None:
        # Once per peer: a probe every half second, or contacts an attacker registered, must
        # not fill the log; the counter has the rest.
        warned = self._tls_warned
        if peer in warned:
            log.debug("TLS connection to %s failed: %s", peer, exc)
            return
        if len(warned) >= 1000:
            warned.clear()
        warned.add(peer)
        log.warning("TLS connection to %s failed: %s", peer, exc)

    def _client_context(self) -> ssl.SSLContext:
        # Made once (loading the CA bundle costs milliseconds); raises TlsConfigError.
        ctx = self._tls_client
        if ctx is None:
            ctx = self._tls_client = client_context(self.config.tls)
        return ctx

    def _report(self, peer: Peer, data: bytes, exc: Exception) -> None:
        self.counters.send_errors += 1
        if self.on_send_error is not None:
            try:
                self.on_send_error(peer, data, exc)
            except Exception:
                log.exception("send-error callback failed")

    async def _sweep_idle(self) -> None:
        cfg = self.config
        period = max(0.1, min(5.0, cfg.tcp_idle_timeout / 4, cfg.tcp_message_timeout / 4))
        while True:
            await asyncio.sleep(period)
            self.sweep(time.monotonic())

    def sweep(self, now: float) -> None:
        """Close the connections idle for ``tcp_idle_timeout`` and those whose current
        message has taken more than ``tcp_message_timeout`` (run periodically)."""
        idle_limit = now - self.config.tcp_idle_timeout
        slow_limit = now - self.config.tcp_message_timeout
        for conn in list(self._tcp.values()):
            if conn.transport is None or conn.transport.is_closing():
                continue
            started = conn.message_started
            if started is not None and started < slow_limit:
                self.counters.tcp_closed_slow += 1
                conn.transport.abort()
            elif started is None and conn.last_activity < idle_limit:
                self.counters.tcp_closed_idle += 1
                conn.transport.close()

    def connected(self, peer: Peer) -> bool:
        """Is a connection to or from ``peer`` open (a phone's TCP or TLS flow)?"""
        conn = self._tcp.get((peer.host, peer.port))
        return conn is not None and conn.transport is not None and (
            not conn.transport.is_closing()
        )

    @property
    def tcp_connections(self) -> int:
        return len(self._tcp)

    def stop_listening(self) -> None:
        """Stop accepting new TCP connections (graceful shutdown's first step)."""
        for server in self._servers:
            server.close()

    async def close(self) -> None:
        """Close every socket."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for server in self._servers:
            server.close()
        for conn in list(self._tcp.values()):
            if conn.transport is not None:
                conn.transport.abort()
        self._tcp.clear()
        self._per_source.clear()
        for t in self._udp.values():
            t.close()
        self._udp.clear()
        for sock, _ in self._udp_drains:
            sock.close()
        self._udp_drains.clear()
        self._udp_default = None
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
