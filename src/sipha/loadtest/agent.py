"""A load agent: connects to a controller over ZeroMQ, runs its share of the plan, reports.

Theory of operation
-------------------
The agent's DEALER socket connects to the controller's ROUTER (ZeroMQ reconnects by itself:
no hand-made reconnect logic).  Until it has a plan, the agent says Hello every second, so a
controller started after the agent, or restarted, still hears it.  A Refused ends the agent
with the controller's reason (a version mismatch says which versions).  With a Plan it runs an
:class:`~sipha.loadtest.runner.AgentRunner` and, concurrently:

* each closed second goes out as a StatsReport (queued by the runner's callback, sent by one
  sender task, so the hot path never awaits the socket);
* a Heartbeat every ``heartbeat_interval``;
* a Stop from the controller stops the runner (drain, then Done);
* if the controller stays silent for ``controller_timeout`` the agent stops by itself.

All tasks live in one TaskGroup; the run's end cancels the helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from sipha.loadtest import protocol as p
from sipha.loadtest.curve import AgentKeys, secure_client
from sipha.loadtest.runner import AgentRunner
from sipha.loadtest.scenario.agent_run import XmlAgentRunner
from sipha.loadtest.stats import IntervalStats
from sipha.loadtest.zmqrecv import recv_frames

log = logging.getLogger(__name__)

__all__ = ["Agent", "AgentRefused"]

_HANDSHAKE_FAILURES = (zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                       | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
_MAX_HANDSHAKE_FAILURES = 3


class AgentRefused(RuntimeError):
    """The controller refused this agent; the message is the controller's reason."""


class Agent:
    """``await Agent("127.0.0.1:5555").run()`` returns the agent's totals.

    With ``keys`` it connects as a CurveZMQ client (the controller must then hold its public
    key; a controller that does not admits nothing: the join times out).  Raises
    :class:`AgentRefused` when refused and ``TimeoutError`` when no controller answers
    within ``join_timeout``.
    """

    def __init__(
        self,
        controller: str,
        *,
        agent_id: str | None = None,
        join_timeout: float = 60.0,
        controller_timeout: float = 15.0,
        version: int = p.PROTOCOL_VERSION,
        keys: AgentKeys | None = None,
    ) -> None:
        self.keys = keys
        host, _, port = controller.rpartition(":")
        self.endpoint = controller if "://" in controller else f"tcp://{host.strip('[]')}:{port}"
        self.agent_id = agent_id or f"{socket.gethostname()}-{os.getpid()}"
        self.join_timeout = join_timeout
        self.controller_timeout = controller_timeout
        self.version = version  # tests use another one to see the refusal
        self.plan: p.Plan | None = None
        self.runner: AgentRunner | XmlAgentRunner | None = None
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._last_heard = time.monotonic()

    async def run(self) -> IntervalStats:
        ctx = zmq.asyncio.Context()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, self.agent_id.encode())
        sock.setsockopt(zmq.LINGER, 2000)
        secure_client(sock, self.keys)
        # A controller that refuses our key says so only in the handshake: watch for it.
        monitor = sock.get_monitor_socket(_HANDSHAKE_FAILURES)
        sock.connect(self.endpoint)
        try:
            welcome = await self._join(sock, monitor)
            sock.disable_monitor()
            monitor.close()
            return await self._run_plan(sock, welcome)
        finally:
            monitor.close()
            sock.close()
            ctx.term()

    async def _join(self, sock: zmq.asyncio.Socket, monitor: zmq.asyncio.Socket) -> p.Welcome:
        hello = p.Hello(
            agent_id=self.agent_id,
            version=self.version,
            host=socket.gethostname(),
            pid=os.getpid(),
            cores=os.cpu_count() or 1,
        )
        welcome: p.Welcome | None = None
        deadline = time.monotonic() + self.join_timeout
        next_hello = 0.0
        failures = 0
        while self.plan is None:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"no controller answered within {self.join_timeout:g} s")
            if welcome is None and now >= next_hello:
                # Never a blocking send: after a failed handshake the socket may have no
                # peer at all, and a waiting send would outlive the join deadline.
                with contextlib.suppress(zmq.Again):
                    await sock.send(p.encode(hello), zmq.NOBLOCK)
                next_hello = now + 1.0
            # A bounded poll, never a cancelled recv: that could drop the Plan (see zmqrecv).
            frames = await recv_frames(sock, min(0.2, deadline - now))
            event = await recv_frames(monitor, 0)
            if event is not None:
                failures += 1
                kind = parse_monitor_message(event)["event"]
                if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                    raise AgentRefused(
                        f"the controller at {self.endpoint} refused this agent's CurveZMQ key "
                        "(is its public key in the controller's agents/ folder?)"
                    )
                if (kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                        or failures >= _MAX_HANDSHAKE_FAILURES):
                    # Keys on one side only (libzmq does not retry that) or the wrong server
                    # key (retried a few times, in case the controller went away
                    # mid-handshake).
                    raise AgentRefused(
                        f"the CurveZMQ handshake with {self.endpoint} keeps failing: keys on "
                        "one side only (--keys), or not this controller's public key"
                    )
            if frames is None:
                continue
            try:
                msg = p.decode(frames[0])
            except p.ProtocolError as exc:
                log.warning("bad frame from the controller: %s", exc)
                continue
            if isinstance(msg, p.Refused):
                raise AgentRefused(msg.reason)
            if isinstance(msg, p.Welcome):
                welcome = msg
            elif isinstance(msg, p.Plan):
                self.plan = msg
        if welcome is None:
            welcome = p.Welcome(agent_id=self.agent_id, version=p.PROTOCOL_VERSION, run_id="")
        return welcome

    async def _run_plan(self, sock: zmq.asyncio.Socket, welcome: p.Welcome) -> IntervalStats:
        plan = self.plan
        assert plan is not None
        agent_id = self.agent_id

        def on_second(second: int, stats: IntervalStats) -> None:
            scenario = runner.snapshot() if isinstance(runner, XmlAgentRunner) else None
            report = p.StatsReport(agent_id=agent_id, second=second, interval=stats.to_wire(),
                                   scenario=scenario)
            self._outbox.put_nowait(p.encode(report))

        runner: AgentRunner | XmlAgentRunner
        if plan.xml is not None:  # a SIPp XML scenario shipped by the controller
            runner = XmlAgentRunner(plan, on_second=on_second)
        else:
            runner = AgentRunner(plan, plan.options, on_second=on_second)
        self.runner = runner
        self._last_heard = time.monotonic()
        totals: IntervalStats | None = None
        async with asyncio.TaskGroup() as tg:
            helpers = [
                tg.create_task(self._sender(sock)),
                tg.create_task(self._heartbeats(welcome.heartbeat_interval)),
                tg.create_task(self._receiver(sock, runner)),
            ]
            totals = await runner.run()
            done = p.Done(agent_id=agent_id, totals=totals.to_wire(),
                          scenario=runner.snapshot() if isinstance(runner, XmlAgentRunner)
                          else None)
            self._outbox.put_nowait(p.encode(done))
            await self._outbox.join()
            for task in helpers:
                task.cancel()
        return totals

    async def _sender(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            data = await self._outbox.get()
            try:
                await sock.send(data)
            finally:
                self._outbox.task_done()

    async def _heartbeats(self, interval: float) -> None:
        seq = 0
        while True:
            # The first beat goes at once: it tells the controller the plan arrived, before the
            # first statistics report, a second after the start.
            seq += 1
            beat = p.Heartbeat(agent_id=self.agent_id, seq=seq, sent_at=time.time())
            self._outbox.put_nowait(p.encode(beat))
            if time.monotonic() - self._last_heard > self.controller_timeout:
                log.warning("controller silent for %.0f s: stopping", self.controller_timeout)
                if self.runner is not None:
                    self.runner.stop()
            await asyncio.sleep(interval)

    async def _receiver(self, sock: zmq.asyncio.Socket,
                        runner: AgentRunner | XmlAgentRunner) -> None:
        while True:
            data = await sock.recv()
            self._last_heard = time.monotonic()
            try:
                msg = p.decode(data)
            except p.ProtocolError as exc:
                log.warning("bad frame from the controller: %s", exc)
                continue
            if isinstance(msg, p.SetRate):
                log.info("controller sets the rate to %g calls/s", msg.rate)
                try:
                    runner.set_rate(msg.rate)
                except ValueError as exc:
                    log.warning("cannot change the rate: %s", exc)
                continue
            if isinstance(msg, p.Stop):
                log.info("controller asks to stop: %s", msg.reason)
                runner.stop()
