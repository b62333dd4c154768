"""The controller: hands each agent its share of the plan, merges their seconds, writes outputs.

Theory of operation
-------------------
A ZeroMQ ROUTER socket; agents are DEALERs identified by their agent id (locust's layout).

1. *Join*: each Hello is answered with :func:`~sipha.loadtest.protocol.negotiate` (a Welcome,
   or a Refused that names both protocol versions; a frame of another version is refused the
   same way).  Once ``expect_agents`` are in (bounded by ``join_timeout``), every agent gets
   its Plan: the rate, ramp, call and concurrency bounds divided by the number of agents
   (:func:`share_plan`), disjoint user ranges, its own seed, and one common ``start_at``.
2. *Run*: StatsReports merge into :class:`~sipha.loadtest.stats.RunStats` (exactly: counters
   add, histograms add).  Second *s* is written once every agent still running has reported
   it, or ``row_grace`` seconds after it ended, whichever comes first.  An agent silent for
   ``heartbeat_timeout`` is *lost*: an event with the time it was last heard; everything it
   reported stays in the run.  A report arriving after its row was written still counts in
   the totals, and is reported (event ``agent-report-late``, :attr:`AgentState.late`): the
   written rows miss it.
3. *End*: when every agent is done or lost, the remaining seconds are written with the summary.
   ``stop()`` sends Stop to every agent (they drain and report Done).  An agent's Done carries
   its own totals; if they hold more than its merged reports (a report lost on the way), the
   difference (counters and latency samples) goes into a later second so the run's totals
   stay exact.  That safety net must never be silent: it is an event (``agent-reconciled``,
   with the counters moved) and :attr:`AgentState.reconciled`; in a healthy run both are
   empty.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
import uuid
from pathlib import Path

import msgspec
import zmq
import zmq.asyncio

from sipha.common.netaddr import is_loopback
from sipha.loadtest import protocol as p
from sipha.loadtest.admission import ReportBounds, check_report, check_totals
from sipha.loadtest.curve import ControllerKeys, Gatekeeper, secure_server
from sipha.loadtest.histmath import difference
from sipha.loadtest.results import ResultsSink
from sipha.loadtest.stats import (
    IntervalStats,
    LatencyKind,
    RunStats,
    StatsDecodeError,
    merge_all,
)
from sipha.loadtest.uac import planned_rate
from sipha.loadtest.view import LiveView
from sipha.loadtest.zmqrecv import recv_frames

log = logging.getLogger(__name__)

__all__ = ["AgentState", "Controller", "RunResult", "share_plan", "unreported"]

_MAX_DROP_EVENTS = 20  # per reason: a hostile agent must not fill events.jsonl

_COUNTERS = ("calls_attempted", "calls_successful", "calls_failed", "retransmissions",
             "transactions_ok", "transactions_failed")


def _split_int(total: int, k: int, index: int) -> int:
    base, extra = divmod(total, k)
    return base + (1 if index < extra else 0)


def share_plan(plan: p.Plan, *, agents: int, index: int, start_at: float) -> p.Plan:
    """Agent ``index``'s share of ``plan`` among ``agents``: rates divided, bounds split so the
    shares add up to the whole, users in disjoint ranges, a distinct seed, the common start."""
    k = agents
    ramp = plan.ramp
    if ramp is not None:
        ramp = p.Ramp(start=ramp.start / k, step=ramp.step / k, interval=ramp.interval,
                      max=ramp.max / k)
    users = plan.users
    if users is not None and users.count >= k:
        first = users.first + sum(_split_int(users.count, k, i) for i in range(index))
        users = msgspec.structs.replace(users, first=first,
                                        count=_split_int(users.count, k, index))
    options = plan.options
    return msgspec.structs.replace(
        plan,
        rate=plan.rate / k,
        ramp=ramp,
        max_calls=None if plan.max_calls is None else _split_int(plan.max_calls, k, index),
        max_concurrent=(
            None
            if plan.max_concurrent is None
            else max(_split_int(plan.max_concurrent, k, index), 1)
        ),
        users=users,
        seed=plan.seed + 7919 * index,
        start_at=start_at,
        options=options,
    )


def unreported(own: IntervalStats, seen: IntervalStats) -> IntervalStats | None:
    """What an agent's own totals ``own`` hold beyond its merged reports ``seen``: counters,
    failure reasons and, bucket by bucket, the setup latencies (the Done totals carry the
    agent's whole-run histograms, so a lost report's samples are rebuilt exactly).

    None when it is not a clean difference: some counter or latency bucket of the reports
    exceeds the totals, or the failure reasons do not add up to the failed calls.
    """
    gap = IntervalStats()
    for name in _COUNTERS:
        extra = getattr(own, name) - getattr(seen, name)
        if extra < 0:
            return None
        setattr(gap, name, extra)
    for key in own.failed_by_reason.keys() | seen.failed_by_reason.keys():
        extra = own.failed_by_reason.get(key, 0) - seen.failed_by_reason.get(key, 0)
        if extra < 0:
            return None
        if extra:
            gap.failed_by_reason[key] = extra
    if sum(gap.failed_by_reason.values()) != gap.calls_failed:
        return None
    which: LatencyKind
    for which in ("setup_18x", "setup_200"):
        whole, part = own.histogram(which), seen.histogram(which)
        if whole is None:
            if part is not None and part.get_total_count():
                return None
            continue
        extra_samples = difference(whole, part)
        if extra_samples is None:
            return None
        gap.add_latencies(which, extra_samples)
    return gap


def _has_counts(stats: IntervalStats) -> bool:
    return any(getattr(stats, name) for name in _COUNTERS)


def _counters(stats: IntervalStats) -> dict[str, object]:
    fields: dict[str, object] = {name: getattr(stats, name) for name in _COUNTERS}
    fields["failed_by_reason"] = dict(stats.failed_by_reason)
    return fields


@dataclasses.dataclass
class AgentState:
    """What the controller knows of one agent."""

    agent_id: str
    host: str
    pid: int
    routing_id: bytes
    last_heard: float  # unix time
    last_second: int = -1
    status: str = "joined"  # joined -> running -> done | lost
    lost_at: float | None = None
    totals: IntervalStats | None = None  # from its Done
    reported: IntervalStats = dataclasses.field(default_factory=IntervalStats)
    # Counters its Done held beyond its merged reports, moved into a later second.
    reconciled: IntervalStats = dataclasses.field(default_factory=IntervalStats)
    # Reports merged after their second's row was written (in the totals, not in the rows).
    late: IntervalStats = dataclasses.field(default_factory=IntervalStats)


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
        return [a for a, s in self.agents.items() if s.status == "lost"]

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
        if expect_agents < 1:
            raise ValueError("expect_agents must be >= 1")
        host = bind.rpartition(":")[0]
        if keys is None and not is_loopback(host):
            raise ValueError(
                f"a controller bound to {host} needs CurveZMQ keys: the plan carries the "
                "users' password (make them with `sipha load keys DIR`, pass --keys DIR)"
            )
        self.keys = keys
        self.bounds = ReportBounds.from_plan(plan)
        self.dropped: collections.Counter[str] = collections.Counter()
        self.gatekeeper: Gatekeeper | None = None
        self.plan = plan
        self.expect_agents = expect_agents
        self.bind_address = bind
        self.results_dir = Path(results_dir) if results_dir is not None else None
        self.csv_path = csv_path
        self.jsonl_path = jsonl_path
        self.view = view
        self.join_timeout = join_timeout
        self.start_delay = start_delay
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.row_grace = row_grace
        self.run_id = plan.run_id or uuid.uuid4().hex[:12]
        self.agents: dict[str, AgentState] = {}
        self.by_routing: dict[bytes, AgentState] = {}
        self.sink: ResultsSink | None = None
        self.port = 0
        self._ctx: zmq.asyncio.Context | None = None
        self._sock: zmq.asyncio.Socket | None = None
        self._stop_requested = False
        self._pre_events: list[tuple[str, float, dict[str, object]]] = []
        self.start_at = 0.0
        self.agent_pids: dict[str, int] = {}  # local agent processes, when the caller spawned them

    # -- socket ---------------------------------------------------------------------------------

    def bind(self) -> int:
        """Bind the ROUTER socket now (before agents are started); returns the port."""
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

    async def _send(self, routing_id: bytes, msg: p.Message) -> None:
        assert self._sock is not None
        await self._sock.send_multipart([routing_id, p.encode(msg)])

    def stop(self) -> None:
        """Ask every agent to stop starting calls (they drain and report Done)."""
        self._stop_requested = True

    # -- the run --------------------------------------------------------------------------------

    async def run(self) -> RunResult:
        self.bind()
        try:
            await self._join()
            await self._start()
            await self._collect()
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
            run=self.sink.run,
            agents=self.agents,
            events=self.sink.events,
            start_time=self.start_at,
            duration=self._duration(),
            dropped=dict(self.dropped),
            refused_keys=self.gatekeeper.refused if self.gatekeeper is not None else 0,
        )

    def _drop(self, reason: str, agent: str | None, detail: str, *, now: float) -> None:
        """Count a frame that is not used, and say so (the first few times per reason)."""
        self.dropped[reason] += 1
        log.warning("dropped a frame from %s (%s): %s", agent or "an unknown peer", reason,
                    detail[:200])
        if self.dropped[reason] <= _MAX_DROP_EVENTS:
            fields: dict[str, object] = {"reason": reason, "agent": agent or "",
                                         "detail": detail[:200]}
            if self.sink is not None:
                self.sink.event("frame-dropped", at=now, **fields)
            else:
                self._pre_events.append(("frame-dropped", now, fields))

    def _duration(self) -> float:
        seconds = self.sink.run.seconds() if self.sink is not None else []
        return float(seconds[-1] + 1) if seconds else 0.0

    async def _recv(self, wait: float) -> tuple[bytes, bytes] | None:
        """The next (routing id, frame), waiting up to ``wait`` s (0: only one already queued)."""
        assert self._sock is not None
        frames = await recv_frames(self._sock, wait)
        if frames is None or len(frames) != 2:
            return None
        return frames[0], frames[1]

    async def _join(self) -> None:
        deadline = time.monotonic() + self.join_timeout
        while len(self.agents) < self.expect_agents:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"only {len(self.agents)} of {self.expect_agents} agents joined "
                    f"within {self.join_timeout:g} s"
                )
            got = await self._recv(min(left, 0.5))
            if got is None:
                continue
            routing_id, data = got
            await self._on_join_frame(routing_id, data)

    async def _on_join_frame(self, routing_id: bytes, data: bytes) -> None:
        try:
            msg = p.decode(data)
        except p.VersionMismatch as exc:
            await self._send(routing_id, p.Refused(reason=str(exc)))
            self._pre_events.append(("agent-refused", time.time(), {"reason": str(exc)}))
            return
        except p.ProtocolError as exc:
            self._drop("undecodable", None, str(exc), now=time.time())
            return
        if not isinstance(msg, p.Hello):
            self._drop("not-joined", None, type(msg).__name__, now=time.time())
            return
        answer = p.negotiate(msg, run_id=self.run_id, heartbeat_interval=self.heartbeat_interval)
        await self._send(routing_id, answer)
        if isinstance(answer, p.Refused):
            self._pre_events.append(
                ("agent-refused", time.time(), {"agent": msg.agent_id, "reason": answer.reason})
            )
            return
        if msg.agent_id not in self.agents:
            state = AgentState(msg.agent_id, msg.host, msg.pid, routing_id, time.time())
            self.agents[msg.agent_id] = state
            self.by_routing[routing_id] = state
            self._pre_events.append(("agent-joined", time.time(),
                                     {"agent": msg.agent_id, "host": msg.host, "pid": msg.pid}))

    async def _start(self) -> None:
        self.start_at = time.time() + self.start_delay
        out = self.results_dir
        self.sink = ResultsSink(
            start_time=self.start_at,
            csv_path=self.csv_path or (out / "stats.csv" if out else None),
            jsonl_path=self.jsonl_path or (out / "stats.jsonl" if out else None),
            events_path=out / "events.jsonl" if out else None,
            view=self.view,
        )
        for kind, at, fields in self._pre_events:
            self.sink.event(kind, at=at, **fields)
        k = len(self.agents)
        for i, state in enumerate(self.agents.values()):
            share = share_plan(self.plan, agents=k, index=i, start_at=self.start_at)
            share = msgspec.structs.replace(share, run_id=self.run_id)
            await self._send(state.routing_id, share)
            state.status = "running"
            state.last_heard = time.time()
        self.sink.event("run-started", at=time.time(), agents=k, start_at=self.start_at)

    async def _collect(self) -> None:
        assert self.sink is not None
        sink = self.sink
        stop_sent = False
        next_beat = time.monotonic()
        while True:
            running = [a for a in self.agents.values() if a.status == "running"]
            if not running:
                break
            if self._stop_requested and not stop_sent:
                stop_sent = True
                for a in running:
                    await self._send(a.routing_id, p.Stop(reason="stopped by the controller"))
            # The frames already queued (up to a bound: two per agent and second is the usual
            # flow) are read before anyone is judged silent: after a stall of this loop the
            # 0.2 s wait may time out with agents' heartbeats waiting behind it.
            got = await self._recv(0.2)
            read = 0
            while got is not None:
                self._on_frame(*got, now=time.time())
                read += 1
                got = await self._recv(0) if read < 1000 else None
            now = time.time()
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + self.heartbeat_interval
                for a in running:
                    await self._send(
                        a.routing_id, p.Heartbeat(agent_id="controller", seq=0, sent_at=now)
                    )
            for a in running:
                if a.status == "running" and now - a.last_heard > self.heartbeat_timeout:
                    a.status = "lost"
                    a.lost_at = a.last_heard
                    sink.event("agent-lost", at=now, agent=a.agent_id, last_heard=a.last_heard,
                               last_second=a.last_second)
            self._write_ready(now)
        self._write_ready(None)
        sink.event("run-finished", at=time.time(),
                   done=[a.agent_id for a in self.agents.values() if a.status == "done"],
                   lost=[a.agent_id for a in self.agents.values() if a.status == "lost"])

    def _on_frame(self, routing_id: bytes, data: bytes, *, now: float) -> None:
        assert self.sink is not None
        state = self.by_routing.get(routing_id)
        agent = state.agent_id if state is not None else None
        try:
            msg = p.decode(data)
        except p.ProtocolError as exc:
            self._drop("undecodable", agent, str(exc), now=now)
            return
        if state is None:
            if isinstance(msg, p.Hello):
                # Late or restarted agents cannot join a run in progress.
                asyncio.get_running_loop().create_task(
                    self._send(routing_id, p.Refused(reason="a run is already in progress"))
                )
            else:
                self._drop("not-joined", None, type(msg).__name__, now=now)
            return
        stats: IntervalStats | None = None
        if isinstance(msg, p.StatsReport | p.Done):
            snapshot = msg.interval if isinstance(msg, p.StatsReport) else msg.totals
            try:
                stats = IntervalStats.from_wire(snapshot)
            except StatsDecodeError as exc:
                self._drop("bad-stats", agent, str(exc), now=now)
                return
            elapsed = now - self.start_at
            why = (check_report(self.bounds, msg.second, stats, elapsed=elapsed)
                   if isinstance(msg, p.StatsReport)
                   else check_totals(self.bounds, stats, elapsed=elapsed))
            if why is not None:
                self._drop("implausible", agent, why, now=now)
                return
        if state.status == "lost":
            # It came back: keep its reports (RunStats ignores duplicates), not its liveness.
            if isinstance(msg, p.StatsReport) and stats is not None:
                self.sink.add(state.agent_id, msg.second, stats)
            return
        state.last_heard = now
        if isinstance(msg, p.StatsReport) and stats is not None:
            if self.sink.run.add(state.agent_id, msg.second, stats):
                state.reported.extend(stats)
                if msg.second <= self.sink.last_written and _has_counts(stats):
                    state.late.merge(stats)
                    self.sink.event("agent-report-late", at=now, agent=state.agent_id,
                                    second=msg.second, **_counters(stats))
            state.last_second = max(state.last_second, msg.second)
        elif isinstance(msg, p.Done) and stats is not None:
            state.totals = stats
            self._reconcile(state)
            state.status = "done"
            self.sink.event("agent-done", at=now, agent=state.agent_id)

    def _reconcile(self, state: AgentState) -> None:
        """Make the merged counts add up to the agent's own totals, and say so.

        Reports and Done travel in order on one connection, so a gap means a report was lost
        (or refused by the merge): whatever the Done totals hold beyond what was merged goes
        into the next unwritten second, so totals stay exact and only the timing of those
        counts shifts.  Every use is an ``agent-reconciled`` event with the counters moved and
        adds to ``state.reconciled``; totals that cannot be reconciled (the reports hold
        more) are left as reported, with an ``agent-totals-mismatch`` event.
        """
        assert self.sink is not None
        own, seen = state.totals, state.reported
        if own is None:
            return
        gap = unreported(own, seen)
        if gap is None:
            self.sink.event("agent-totals-mismatch", at=time.time(), agent=state.agent_id,
                            own=_counters(own), reported=_counters(seen))
            return
        if gap.is_empty():
            return
        second = max(state.last_second, self.sink.last_written) + 1
        if self.sink.run.add(state.agent_id, second, gap):
            state.reported.extend(gap)
            state.reconciled.merge(gap)
            state.last_second = second
            self.sink.event("agent-reconciled", at=time.time(), agent=state.agent_id,
                            second=second, **_counters(gap))

    def _write_ready(self, now: float | None) -> None:
        """Write every second all running agents have reported (``now`` None: all of them)."""
        assert self.sink is not None
        sink = self.sink
        seconds = sink.run.seconds()
        if not seconds:
            return
        last = seconds[-1]
        s = sink.last_written + 1
        while s <= last:
            if now is not None:
                waiting = [a for a in self.agents.values()
                           if a.status == "running" and a.last_second < s]
                overdue = now > self.start_at + s + 1 + self.row_grace
                if waiting and not overdue:
                    break
            sink.write(s, target_rate=planned_rate(self.plan, s))
            s += 1
