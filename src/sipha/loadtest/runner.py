"""Running one agent's engines on real sockets: the thin asyncio service around the cores.

Theory of operation
-------------------
The engines (:mod:`sipha.loadtest.uac`, :mod:`sipha.loadtest.uas`) are sans-IO.  This module
binds their sockets, feeds them what arrives, sends what they queue, and ticks them:

* UDP uses one plain non-blocking socket per engine read with ``loop.add_reader``: a readable
  event drains every waiting datagram in one callback (one clock read, one ``advance``, one
  flush per batch), which costs far less per message than a ``DatagramProtocol`` callback each.
  That is why the engines do not sit on :class:`sipha.transport.SipEndpoint`, whose receive path
  parses every message fully (see :mod:`sipha.loadtest.wire`).
* TCP uses asyncio protocols with a Content-Length framer; the UAC keeps one connection to the
  target (RFC 3261 §18.1.1), the UAS answers on the connection a request came on.  TLS is the
  same with asyncio's ssl underneath (contexts from :mod:`sipha.transport.tls`): the UAC checks
  the target's certificate against ``tls_ca``, the UAS listener presents ``tls_cert``.
* A tick task wakes at the engines' next deadline (at least every 2 ms while calls are being
  started, so arrivals stay smooth) and calls ``advance(now)``.

Seconds are counted from the plan's ``start_at`` (unix time, mapped once to the monotonic
clock), so every agent's second *n* is the same wall-clock second.  Closed seconds of all the
engines of the agent are merged and handed to ``on_second(second, stats)`` in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any, cast

from sipha.loadtest.core import EngineBase
from sipha.loadtest.options import ScenarioOptions
from sipha.loadtest.protocol import Plan
from sipha.loadtest.stats import IntervalStats
from sipha.loadtest.uac import UacEngine
from sipha.loadtest.uas import UasEngine
from sipha.sip import SipParseError, StreamParser
from sipha.transport.endpoint import SOCKET_BUFFER
from sipha.transport.tls import TlsConfig, client_context, server_context

log = logging.getLogger(__name__)

__all__ = ["AgentRunner", "SecondCallback"]

SecondCallback = Callable[[int, IntervalStats], None]

_MAX_BATCH = 4096  # datagrams drained per readable event before yielding to the loop
_MAX_TICK = 0.002  # seconds between ticks while starting calls
_IDLE_TICK = 0.05


def _udp_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _UdpChannel:
    """One engine on one UDP socket."""

    def __init__(self, runner: AgentRunner, engine: EngineBase, sock: socket.socket,
                 target: tuple[str, int] | None) -> None:
        self.runner = runner
        self.engine = engine
        self.sock = sock
        self.target = target
        self.send_errors = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.add_reader(self.sock.fileno(), self.on_readable)

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(Exception):
            loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def on_readable(self) -> None:
        recv = self.sock.recvfrom
        engine = self.engine
        now = time.monotonic()
        self.runner.advance(now)
        on_message = engine.on_message
        for _ in range(_MAX_BATCH):
            try:
                data, addr = recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                continue  # ICMP errors surface here on Linux: the timers handle the loss
            on_message(data, addr, now)
        self.runner.flush()

    def flush(self) -> None:
        engine = self.engine
        sendto = self.sock.sendto
        if engine.out:
            target = self.target
            out = engine.out
            engine.out = []
            if target is not None:
                for data in out:
                    try:
                        sendto(data, target)
                    except OSError:
                        self.send_errors += 1
        if engine.replies:
            replies = engine.replies
            engine.replies = []
            for data, peer in replies:
                try:
                    sendto(data, peer)
                except OSError:
                    self.send_errors += 1


class _TcpConn(asyncio.Protocol):
    def __init__(self, channel: _TcpChannel) -> None:
        self.channel = channel
        self.framer = StreamParser()  # the transport's framer: frames only, never parsed here
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport quacks like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        framer = self.framer
        framer.feed(data)
        frames: list[bytes] = []
        try:
            while (frame := framer.next_frame()) is not None:
                frames.append(frame)
        except SipParseError:
            # Framing is lost (no end of headers within the limit, a bad Content-Length):
            # the stream cannot be resynchronised (RFC 3261 §18.3).  What was framed before
            # still counts.
            if self.transport is not None:
                self.transport.close()
        ch = self.channel
        now = time.monotonic()
        ch.runner.advance(now)
        for frame in frames:
            ch.engine.on_message(frame, self, now)
        ch.runner.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.channel.client is self:
            self.channel.client = None

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


class _TcpChannel:
    """One engine on TCP: a client connection to the target and/or a listening server."""

    def __init__(self, runner: AgentRunner, engine: EngineBase,
                 target: tuple[str, int] | None, tls: TlsConfig | None = None) -> None:
        self.runner = runner
        self.engine = engine
        self.target = target
        self.tls = tls  # None: plain TCP
        self.client: _TcpConn | None = None
        self.server: asyncio.Server | None = None
        self.send_errors = 0
        self._connecting: asyncio.Task[None] | None = None

    async def listen(self, host: str, port: int) -> int:
        loop = asyncio.get_running_loop()
        tls = None if self.tls is None else server_context(self.tls)
        self.server = await loop.create_server(lambda: _TcpConn(self), host, port,
                                               reuse_address=True, ssl=tls)
        return int(self.server.sockets[0].getsockname()[1])

    async def connect(self) -> None:
        if self.target is None:
            return
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if self.tls is not None:
            tls = self.runner.tls_client = self.runner.tls_client or client_context(self.tls)
        try:
            async with asyncio.timeout(5.0):
                _, proto = await loop.create_connection(
                    lambda: _TcpConn(self), *self.target, ssl=tls,
                    server_hostname=self.target[0] if tls else None,
                )
        except (OSError, TimeoutError) as exc:
            if isinstance(exc, ssl.SSLError):
                self.runner.tls_failures += 1
                if self.runner.tls_failures > 1:
                    return  # said once: a refused certificate stays refused
            log.warning("%s connection to %s:%s failed: %s",
                        "TCP" if tls is None else "TLS", *self.target, exc)
            return
        assert isinstance(proto, _TcpConn)
        self.client = proto

    def flush(self) -> None:
        engine = self.engine
        if engine.out:
            out = engine.out
            engine.out = []
            client = self.client
            if client is None:
                # Lost requests are the transaction timers' business (Timer B/F over TCP).
                self.send_errors += len(out)
                if self._connecting is None or self._connecting.done():
                    self._connecting = asyncio.get_running_loop().create_task(self.connect())
            else:
                client.write(b"".join(out))
        if engine.replies:
            replies = engine.replies
            engine.replies = []
            for data, peer in replies:
                peer.write(data)

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.client is not None and self.client.transport is not None:
            self.client.transport.abort()
        if self.server is not None:
            self.server.close()
        if self._connecting is not None:
            self._connecting.cancel()


class AgentRunner:
    """Runs the engines of one agent for one plan; ``await run()`` returns the run's totals.

    ``on_second(second, stats)`` receives each closed second (all engines merged), in order.
    ``stop()`` ends the run early: no new calls, then the in-flight ones drain.
    """

    def __init__(
        self,
        plan: Plan,
        options: ScenarioOptions,
        *,
        on_second: SecondCallback | None = None,
    ) -> None:
        self.plan = plan
        self.options = options
        self.on_second = on_second
        self.uac: UacEngine | None = None
        self.uas: UasEngine | None = None
        self.engines: list[EngineBase] = []
        self.channels: list[_UdpChannel | _TcpChannel] = []
        self.totals = IntervalStats()
        self.local_port = 0
        self.uas_port = 0
        self._pending: dict[int, list[IntervalStats]] = {}
        self._next_second = 0
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self.stopped_at: float | None = None
        self.ready = asyncio.Event()  # sockets bound (ports known)
        self.tls_client: ssl.SSLContext | None = None
        self.tls_failures = 0  # TLS handshakes that failed (the target's certificate refused)

    def stop(self) -> None:
        """Start no new calls; let the calls in flight finish (bounded by drain_timeout)."""
        self._stop.set()
        self._wake.set()

    def set_rate(self, rate: float) -> None:
        """An operator's change while the run goes: ``rate`` calls/s from now on (the ramp,
        if any, ends). Raises ValueError when this agent places no calls or for a bad rate."""
        uac = self.uac
        if uac is None:
            raise ValueError("this run places no calls: there is no rate to change")
        uac.schedule_.retarget(time.monotonic() - uac.t0, rate)
        self._wake.set()

    def target_rate(self, second: int) -> float:
        """The rate in force during ``second`` (rate changes included)."""
        uac = self.uac
        return 0.0 if uac is None else uac.schedule_.rate(float(second))

    # -- the hot path, called by the channels ----------------------------------------------------

    def advance(self, now: float) -> None:
        for engine in self.engines:
            engine.advance(now)
        if self.engines[0].reports:
            self._collect()

    def flush(self) -> None:
        for ch in self.channels:
            ch.flush()

    def _collect(self) -> None:
        n = len(self.engines)
        pending = self._pending
        for engine in self.engines:
            for second, stats in engine.reports:
                pending.setdefault(second, []).append(stats)
            engine.reports.clear()
        while len(pending.get(self._next_second, ())) >= n:
            parts = pending.pop(self._next_second)
            merged = parts[0]
            for extra in parts[1:]:
                merged.merge(extra)
            self.totals.extend(merged)
            if self.on_second is not None:
                self.on_second(self._next_second, merged)
            self._next_second += 1

    # -- setup ----------------------------------------------------------------------------------

    async def _bind(self, engine_factory: Callable[[int], EngineBase], host: str, port: int,
                    target: tuple[str, int] | None, *, server: bool) -> tuple[EngineBase, int]:
        loop = asyncio.get_running_loop()
        if self.plan.transport == "udp":
            sock = _udp_socket(host, port)
            bound = int(sock.getsockname()[1])
            engine = engine_factory(bound)
            ch_udp = _UdpChannel(self, engine, sock, target)
            ch_udp.start(loop)
            self.channels.append(ch_udp)
            return engine, bound
        tls = None
        if self.plan.transport == "tls":
            o = self.options
            tls = TlsConfig(ca=o.tls_ca, cert=o.tls_cert, key=o.tls_key,
                            verify_server=o.tls_verify)
        ch = _TcpChannel(self, _Placeholder(), target, tls)  # type: ignore[arg-type]
        bound = await ch.listen(host, port) if server else 0
        engine = engine_factory(bound)
        ch.engine = engine
        if target is not None:
            await ch.connect()
            if not server and ch.client is not None and ch.client.transport is not None:
                bound = int(ch.client.transport.get_extra_info("sockname")[1])
                engine = engine_factory(bound)
                ch.engine = engine
        self.channels.append(ch)
        return engine, bound

    async def _setup(self, t0: float) -> None:
        plan, opts = self.plan, self.options
        rng = random.Random(plan.seed)
        target = (plan.target_host, plan.target_port)
        host = opts.local_host
        if plan.scenario == "uas":
            engine, self.local_port = await self._bind(
                lambda port: UasEngine(opts, transport=plan.transport, local_host=host,
                                       local_port=port, t0=t0, rng=rng, count_calls=True,
                                       users=plan.users, target=plan.target,
                                       domain=opts.domain),
                host, opts.local_port, target if plan.users is not None else None, server=True,
            )
            assert isinstance(engine, UasEngine)
            self.uas = engine
            self.engines.append(engine)
            return
        uac, self.local_port = await self._bind(
            lambda port: UacEngine(plan, opts, local_host=host, local_port=port, t0=t0, rng=rng),
            host, opts.local_port, target, server=False,
        )
        assert isinstance(uac, UacEngine)
        self.uac = uac
        self.engines.append(uac)
        if plan.scenario == "register+call":
            uas_rng = random.Random(plan.seed + 1)
            uas, self.uas_port = await self._bind(
                lambda port: UasEngine(opts, transport=plan.transport, local_host=host,
                                       local_port=port, t0=t0, rng=uas_rng, count_calls=False,
                                       users=plan.users, target=plan.target,
                                       domain=opts.domain),
                host, opts.uas_port, target, server=True,
            )
            assert isinstance(uas, UasEngine)
            self.uas = uas
            self.engines.append(uas)

    # -- the run --------------------------------------------------------------------------------

    async def run(self) -> IntervalStats:
        """Bind, wait for ``start_at``, run to the end of the plan and drain; return totals.

        Raises ``OSError`` if a socket cannot be bound.
        """
        loop = asyncio.get_running_loop()
        t0 = time.monotonic() + (self.plan.start_at - time.time())
        try:
            await self._setup(t0)
            self.ready.set()
            if self.uas is not None and self.uas.users is not None:
                now = time.monotonic()
                self.uas.register_all(now)
                self.flush()
                # Calls to the users make sense only once they are registered.
                deadline = max(t0, now + 64 * self.options.t1)
                while not self.uas.registrations_settled and time.monotonic() < deadline:
                    self.advance(time.monotonic())
                    self.flush()
                    await asyncio.sleep(0.01)
            delay = t0 - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stop.wait()
            await self._tick_loop()
        finally:
            for ch in self.channels:
                ch.close(loop)
        return self.totals

    async def _tick_loop(self) -> None:
        uac = self.uac
        drain_until: float | None = None
        plan = self.plan
        while True:
            now = time.monotonic()
            if self._stop.is_set():
                if uac is not None:
                    uac.stop("stopped")
                if drain_until is None:
                    drain_until = now + self.options.drain_timeout
                    self.stopped_at = now
            self.advance(now)
            self.flush()
            if uac is not None and uac.stopped:
                if drain_until is None:
                    drain_until = now + self.options.drain_timeout
                    self.stopped_at = now
                if uac.finished:
                    break
                if now >= drain_until:
                    # Calls still in progress count as failed (drain-timeout), not lost.
                    uac.abandon(now)
                    break
            elif uac is None:
                # The UAS role runs for the duration (or until stopped).
                if plan.duration is not None and now - self.engines[0].t0 >= plan.duration:
                    if drain_until is None:
                        drain_until = now + min(self.options.drain_timeout, 2.0)
                    if self.engines[0].idle or now >= drain_until:
                        break
                elif drain_until is not None and (self.engines[0].idle or now >= drain_until):
                    break
            nxt = min(e.next_deadline() for e in self.engines)
            gap = nxt - time.monotonic()
            cap = _MAX_TICK if uac is not None and not uac.stopped else _IDLE_TICK
            gap = min(max(gap, 0.0002), cap)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(gap):
                    await self._wake.wait()
        # The last, partial second: report it so totals cover every call.
        for engine in self.engines:
            engine.flush_partial_second()
        self._collect()


class _Placeholder:
    """Stands in for the engine while a TCP listener is bound (its port names the engine)."""

    out: list[bytes] = []  # noqa: RUF012 - never written: replaced before any traffic
    replies: list[tuple[bytes, Any]] = []  # noqa: RUF012
