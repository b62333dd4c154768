"""The controller service: moves frames between the agents and the coordinator, and files.

Theory of operation
-------------------
A ZeroMQ ROUTER socket; agents are DEALERs identified by their agent id (locust's layout),
authenticated by CurveZMQ when the controller has keys (:mod:`~sipha.loadtest.curve`).  Every
decision -- who joins, when the plans go, who is missing or lost, which rows are ready, what
a Done reconciles -- is the sans-IO :class:`~sipha.loadtest.coordinator.Coordinator`'s.  This
loop only waits for a frame or the coordinator's next deadline, reads every frame already
queued (so a stall of this loop never makes a live agent look silent), feeds them and the
clock in, and carries out the actions: send a message, write a row, record an event.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from pathlib import Path

import zmq
import zmq.asyncio

from sipha.common.netaddr import is_loopback
from sipha.loadtest import protocol as p
from sipha.loadtest.coordinator import (
    Action,
    AgentState,
    Coordinator,
    EventKind,
    Note,
    Send,
    WriteRow,
    share_plan,
)
from sipha.loadtest.curve import ControllerKeys, Gatekeeper, secure_server
from sipha.loadtest.phases import AgentPhase, RunStage
from sipha.loadtest.reconcile import unreported
from sipha.loadtest.results import ResultsSink
from sipha.loadtest.stats import IntervalStats, RunStats, merge_all
from sipha.loadtest.view import LiveView
from sipha.loadtest.zmqrecv import recv_frames

log = logging.getLogger(__name__)

__all__ = ["AgentState", "Controller", "RunResult", "share_plan", "unreported"]

_MAX_QUEUED = 1000  # frames read in one go before the clock is looked at
_MAX_WAIT = 0.2


@dataclasses.dataclass
class RunResult:
    """The outcome of a controlled run."""

    run: RunStats
    agents: dict[str, AgentState]
    events: list[dict[str, object]]
    start_time: float
    duration: float
    # Frames dropped (undecodable, implausible, from no agent), by reason.
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    refused_keys: int = 0  # CurveZMQ clients whose key is not allowed

    @property
    def totals(self) -> IntervalStats:
        return self.run.totals()

    @property
    def lost_agents(self) -> list[str]:
        return [a for a, s in self.agents.items() if s.phase is AgentPhase.LOST]

    @property
    def reconciled(self) -> IntervalStats:
        """Counters every agent's Done held beyond its per-second reports (empty when no
        report went missing): they are in the totals, not in the seconds they happened in."""
        return merge_all(a.reconciled for a in self.agents.values())

    @property
    def late(self) -> IntervalStats:
        """Reports that arrived after their second's row was written (in the totals only)."""
        return merge_all(a.late for a in self.agents.values())


class Controller:
    """Runs one plan over ``expect_agents`` agents; ``await run()`` returns a :class:`RunResult`.

    Outputs: ``results_dir`` (``stats.csv``, ``stats.jsonl``, ``events.jsonl``) and/or explicit
    ``csv_path`` / ``jsonl_path``.  ``bind`` is ``HOST:PORT`` (port 0: any; see ``port`` after
    :meth:`bind`).  With ``keys`` the socket is a CurveZMQ server admitting only the agents
    whose public keys are allowed; without, only a loopback ``bind`` is accepted
    (``ValueError`` otherwise).  Raises ``TimeoutError`` if not enough agents join within
    ``join_timeout``.
    """

    def __init__(
        self,
        plan: p.Plan,
        *,
        expect_agents: int,
        bind: str = "127.0.0.1:0",
        results_dir: str | Path | None = None,
        csv_path: str | Path | None = None,
        jsonl_path: str | Path | None = None,
        view: LiveView | None = None,
        join_timeout: float = 60.0,
        start_delay: float = 1.0,
        heartbeat_interval: float = 1.0,
        heartbeat_timeout: float = 3.5,
        row_grace: float = 2.5,
        keys: ControllerKeys | None = None,
    ) -> None:
        host = bind.rpartition(":")[0]
        if keys is None and not is_loopback(host):
            raise ValueError(
                f"a controller bound to {host} needs CurveZMQ keys: the plan carries the "
                "users' password (make them with `sipha load keys DIR`, pass --keys DIR)"
            )
        self.run_id = plan.run_id or uuid.uuid4().hex[:12]
        self.coordinator = Coordinator(
            plan, expect_agents=expect_agents, run_id=self.run_id, now=time.time(),
            join_timeout=join_timeout, start_delay=start_delay,
            heartbeat_interval=heartbeat_interval, heartbeat_timeout=heartbeat_timeout,
            row_grace=row_grace,
        )
        self.plan = plan
        self.keys = keys
        self.bind_address = bind
        self.results_dir = Path(results_dir) if results_dir is not None else None
        self.csv_path = csv_path
        self.jsonl_path = jsonl_path
        self.view = view
        self.sink: ResultsSink | None = None
        self.port = 0
        self.gatekeeper: Gatekeeper | None = None
        self.agent_pids: dict[str, int] = {}  # local agent processes, when the caller spawned them
        self._ctx: zmq.asyncio.Context | None = None
        self._sock: zmq.asyncio.Socket | None = None
        self._stop_requested = False
        self._early: list[Note] = []  # events before the sink exists

    @property
    def agents(self) -> dict[str, AgentState]:
        return self.coordinator.agents

    @property
    def start_at(self) -> float:
        """Unix time of second 0 (0.0 until the plans are sent)."""
        return self.coordinator.start_at

    # -- socket ---------------------------------------------------------------------------------

    def bind(self) -> int:
        """Bind the ROUTER socket now (before agents are started); returns the port.  With
        keys, call it from a running event loop: the ZAP handler runs on it."""
        if self._sock is not None:
            return self.port
        host, _, port = self.bind_address.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        self._ctx = zmq.asyncio.Context()
        if self.keys is not None:
            # The ZAP handler must answer before the first agent connects.
            self.gatekeeper = Gatekeeper(self._ctx, self.keys.allowed)
            self.gatekeeper.start()
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 1000)
        secure_server(sock, self.keys)
        if int(port) == 0:
            self.port = sock.bind_to_random_port(f"tcp://{host}")
        else:
            sock.bind(f"tcp://{host}:{port}")
            self.port = int(port)
        self._sock = sock
        return self.port

    def stop(self) -> None:
        """Ask every agent to stop starting calls (they drain and report Done)."""
        self._stop_requested = True

    # -- the run --------------------------------------------------------------------------------

    async def run(self) -> RunResult:
        self.bind()
        try:
            await self._loop()
        finally:
            if self.sink is not None:
                self.sink.close(duration=self._duration())
            if self._sock is not None:
                self._sock.close()
            if self.gatekeeper is not None:
                self.gatekeeper.stop()
            if self._ctx is not None:
                self._ctx.term()
        assert self.sink is not None
        return RunResult(
            run=self.coordinator.run,
            agents=self.agents,
            events=self.sink.events,
            start_time=self.start_at,
            duration=self._duration(),
            dropped=dict(self.coordinator.dropped),
            refused_keys=self.gatekeeper.refused if self.gatekeeper is not None else 0,
        )

    def _duration(self) -> float:
        seconds = self.coordinator.run.seconds()
        return float(seconds[-1] + 1) if seconds else 0.0

    async def _loop(self) -> None:
        coordinator = self.coordinator
        assert self._sock is not None
        while coordinator.stage in (RunStage.JOINING, RunStage.RUNNING):
            if self._stop_requested:
                await self._carry_out(coordinator.stop(time.time()))
            deadline = coordinator.next_deadline()
            wait = _MAX_WAIT if deadline is None else deadline - time.time()
            frames = await recv_frames(self._sock, min(max(wait, 0.0), _MAX_WAIT))
            read = 0
            while frames is not None:
                if len(frames) == 2:
                    await self._carry_out(coordinator.on_frame(frames[0], frames[1],
                                                               time.time()))
                read += 1
                frames = await recv_frames(self._sock, 0) if read < _MAX_QUEUED else None
            await self._carry_out(coordinator.tick(time.time()))
        if coordinator.stage is RunStage.FAILED:
            raise TimeoutError(
                f"only {len(coordinator.agents)} of {coordinator.expect_agents} agents joined "
                f"within {coordinator.join_timeout:g} s"
            )

    async def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                assert self._sock is not None
                await self._sock.send_multipart([action.routing_id, p.encode(action.message)])
            elif isinstance(action, WriteRow):
                assert self.sink is not None
                self.sink.write(action.second, target_rate=action.target_rate)
            else:
                self._record(action)

    def _record(self, note: Note) -> None:
        if note.kind is EventKind.FRAME_DROPPED:
            log.warning("dropped a frame from %s: %s", note.fields.get("agent") or "a stranger",
                        note.fields.get("detail"))
        if note.kind is EventKind.RUN_STARTED:
            out = self.results_dir
            self.sink = ResultsSink(
                start_time=self.start_at,
                csv_path=self.csv_path or (out / "stats.csv" if out else None),
                jsonl_path=self.jsonl_path or (out / "stats.jsonl" if out else None),
                events_path=out / "events.jsonl" if out else None,
                view=self.view,
                run=self.coordinator.run,
            )
            for early in self._early:
                self.sink.event(early.kind.value, at=early.at, **early.fields)
            self._early.clear()
        if self.sink is None:
            self._early.append(note)
        else:
            self.sink.event(note.kind.value, at=note.at, **note.fields)
