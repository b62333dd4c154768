"""Running a scenario on real sockets: the thin asyncio service around the engine.

One UDP socket (SIPp's ``-t u1``) or TCP connections (``-t t1``), see :mod:`.channels`; or a
socket per call (``-t un``/``tn``) and several local addresses, see :mod:`.percall`.  A
tick task starts client calls on the rate schedule (up to ``max_calls``, with at most
``limit`` in progress, SIPp's ``-l``), fires the engine's timers and sends what it queued;
the channel feeds every message received to the engine.  The run ends when its bound is
reached and the calls in progress are done (or ``drain_timeout`` passes), on ``stop``, or on
an ``exec int_cmd`` that stops it.  ``exec command=`` (only loadable with --allow-exec) runs
through ``/bin/sh -c``, bounded, never awaited by the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TextIO

from sipha.loadtest.scenario.channels import TcpChannel
from sipha.loadtest.scenario.context import RunConfig
from sipha.loadtest.scenario.engine import ScenarioEngine
from sipha.loadtest.scenario.injection import InjectionFile
from sipha.loadtest.scenario.model import Scenario
from sipha.loadtest.scenario.percall import SocketOptions, TcpPerCall, UdpPool
from sipha.loadtest.scenario.schedule import RateSchedule

__all__ = ["PeriodCallback", "RunBounds", "run_scenario"]

log = logging.getLogger(__name__)
_TICK = 0.002
PeriodCallback = Callable[[ScenarioEngine, float], None]
_COMMAND_TIMEOUT = 30.0
_COMMAND_GRACE = 5.0


@dataclass(frozen=True, slots=True)
class RunBounds:
    rate: float = 10.0  # calls per second (client mode)
    schedule: RateSchedule | None = None  # overrides ``rate`` (SIPp's -rp, -rate_increase)
    timeout: float | None = None  # end the run after this long, calls or not (SIPp -timeout)
    max_calls: int | None = None  # -m
    limit: int | None = None  # -l
    duration: float | None = None  # stop starting calls after this long
    drain_timeout: float = 40.0


async def run_scenario(scenario: Scenario, config: RunConfig, bounds: RunBounds, *,
                       files: list[InjectionFile] | None = None, seed: int = 0,
                       stop: asyncio.Event | None = None,
                       bound: asyncio.Future[int] | None = None,
                       on_period: PeriodCallback | None = None,
                       period: float = 1.0, trace_msg: TextIO | None = None,
                       trace_err: TextIO | None = None,
                       out_of_call: Scenario | None = None,
                       trace_rtt: TextIO | None = None,
                       sockets: SocketOptions | None = None) -> ScenarioEngine:
    """Run until bounded or stopped; returns the engine (its ``stats``).

    ``config.local_port`` 0 binds any free port; the engine is then configured with the
    port bound.  ``bound`` (if given) receives the port once the socket is open.
    ``on_period(engine, wall_time)`` is called every ``period`` seconds and once at the end
    (the statistics files hang there).  ``trace_msg`` gets every message sent and received,
    ``trace_err`` every unexpected one (SIPp's -trace_msg and -trace_err).  ``out_of_call``
    runs for requests that belong to no call of a client scenario (SIPp's -oocsf).
    ``trace_rtt`` gets every rtd sample (SIPp's -trace_rtt with -rtt_freq 1).  ``sockets``:
    a socket per call, several local addresses, TCP reconnection (:mod:`.percall`).
    """
    stop = stop or asyncio.Event()
    holder: list[ScenarioEngine] = []
    loop = asyncio.get_running_loop()
    flush_due = [False]

    def flush_soon() -> None:
        flush_due[0] = False
        flush()

    def deliver(data: bytes, source: tuple[str, int]) -> None:
        if not holder:
            return
        if trace_msg is not None:
            _trace(trace_msg, f"{config.transport} message received [{len(data)}] bytes :",
                   data)
        holder[0].receive(data, source, time.monotonic())
        # One flush after the batch of messages read together, not one per message.
        if not flush_due[0]:
            flush_due[0] = True
            loop.call_soon(flush_soon)

    opts = sockets or SocketOptions()
    ips = list(opts.local_ips) or [config.local_ip]

    def on_lost(dest: tuple[str, int]) -> None:  # a TCP connection we opened closed
        if holder and opts.reconnect_close:
            holder[0].fail_calls_to(dest, "tcp_closed", time.monotonic())
            flush()

    channel: TcpChannel | UdpPool | TcpPerCall
    if config.transport == "TCP":
        tcp = TcpChannel(deliver, on_lost=on_lost, max_reconnect=opts.max_reconnect,
                         reconnect_sleep=opts.reconnect_sleep)
        channel = TcpPerCall(deliver, ips, tcp) if opts.per_call else tcp
    else:  # plain sockets drained in batches: cheaper per datagram than a DatagramProtocol
        channel = UdpPool(deliver, ips, per_call=opts.per_call)
    port = await channel.open(ips[0], config.local_port)
    now = time.monotonic()
    config = replace(config, local_ip=ips[0], local_port=port, pid=config.pid or os.getpid(),
                     start=now, wall_offset=time.time() - now)
    engine = ScenarioEngine(scenario, config, rng=random.Random(seed or None), files=files,
                            out_of_call=out_of_call)
    if isinstance(channel, UdpPool | TcpPerCall):
        engine.bind_call = channel.bind_call
    holder.append(engine)
    if trace_rtt is not None:
        engine.record_rtt = True
        trace_rtt.write("Date_ms;response_time_ms;rtd_no\n")

    def flush() -> None:
        for out in engine.take_outgoing():
            channel.send(out.data, out.dest, out.source)
            if trace_msg is not None:
                _trace(trace_msg, f"{config.transport} message sent ({len(out.data)} bytes)",
                       out.data)
        if trace_err is not None and engine.errors:
            for line in engine.errors:
                trace_err.write(f"{_stamp()} {line}\n")
            trace_err.flush()
        engine.errors.clear()
        if trace_rtt is not None and engine.rtt_samples:
            for at, rtt, name in engine.rtt_samples:
                trace_rtt.write(f"{(at - config.start) * 1000:.3f};{int(rtt * 1000)};{name}\n")
            trace_rtt.flush()
        engine.rtt_samples.clear()
        if engine.released:
            if isinstance(channel, UdpPool | TcpPerCall):
                for addr in engine.released:
                    channel.release(addr)
            engine.released.clear()

    if bound is not None and not bound.done():
        bound.set_result(port)
    procs: set[asyncio.Task[None]] = set()
    try:
        await _drive(engine, bounds, scenario.client, stop, flush, procs, on_period, period)
    finally:
        if on_period is not None:
            on_period(engine, time.time())
        channel.close()
        if procs:  # commands started by exec get a moment to finish, then are killed
            await asyncio.wait(set(procs), timeout=_COMMAND_GRACE)
        for task in procs:
            task.cancel()
    return engine


async def _drive(engine: ScenarioEngine, bounds: RunBounds, client: bool, stop: asyncio.Event,
                 flush: Callable[[], None], procs: set[asyncio.Task[None]],
                 on_period: PeriodCallback | None, period: float) -> None:
    t0 = time.monotonic()
    next_period = t0 + period
    schedule = bounds.schedule or RateSchedule(rate=bounds.rate)
    quit_after = schedule.quit_after()
    started = 0
    closed_loop = engine.config.users > 0
    drain_until: float | None = None
    while not stop.is_set():
        now = time.monotonic()
        engine.advance(now)
        if on_period is not None and now >= next_period:
            on_period(engine, now + engine.config.wall_offset)
            next_period += period
        if bounds.timeout is not None and now - t0 >= bounds.timeout:
            return
        starting = client and not engine.stop_requested and (
            bounds.duration is None or now - t0 < bounds.duration) and (
            bounds.max_calls is None or started < bounds.max_calls) and (
            quit_after is None or now - t0 < quit_after)
        if starting:
            due = started + 1 if closed_loop else schedule.due(now - t0)
            while started < due and (bounds.max_calls is None or started < bounds.max_calls):
                if bounds.limit is not None and engine.current_calls >= bounds.limit:
                    break
                if not engine.start_call(now):
                    break
                started += 1
                if closed_loop:
                    due = started + 1
        flush()
        for line in engine.logs:
            log.info("%s", line)
        engine.logs.clear()
        for cmd in engine.commands:
            task = asyncio.get_running_loop().create_task(_command(cmd))
            procs.add(task)
            task.add_done_callback(procs.discard)
        engine.commands.clear()
        if engine.stop_requested == "now":
            return
        if not client and not engine.stop_requested:
            created = engine.stats.created
            over = (bounds.max_calls is not None and created >= bounds.max_calls) or (
                bounds.duration is not None and now - t0 >= bounds.duration)
            if over and engine.current_calls == 0:
                return
        elif not starting or engine.stop_requested:
            if engine.current_calls == 0:
                return
            drain_until = drain_until or now + bounds.drain_timeout
            if now >= drain_until:
                return
        deadline = engine.next_deadline()
        wait = _TICK if starting else min(0.05, max(0.0, (deadline or now + 0.05) - now))
        # A plain sleep (stop is looked at on every turn): wait_for would make a task a tick.
        await asyncio.sleep(max(wait, 0.0005))


def _stamp() -> str:
    wall = time.time()
    return time.strftime("%Y-%m-%d\t%H:%M:%S", time.gmtime(wall)) + f".{int(wall % 1 * 1e6):06d}"


def _trace(stream: TextIO, what: str, data: bytes) -> None:
    # SIPp's -trace_msg layout: a dashed line with the time, what happened, the message.
    stream.write(f"----------------------------------------------- {_stamp()}\n{what}\n\n")
    stream.write(data.decode("utf-8", "replace").replace("\r\n", "\n"))
    stream.write("\n\n")


async def _command(cmd: str) -> None:
    proc = await asyncio.create_subprocess_shell(cmd, stdout=asyncio.subprocess.DEVNULL,
                                                 stderr=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(_COMMAND_TIMEOUT):
            await proc.wait()
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
