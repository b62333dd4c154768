"""The load controller's decisions, sans-IO: frames and the clock in, typed actions out.

Theory of operation
-------------------
:class:`Coordinator` is fed every frame (``on_frame(routing_id, data, now)``) and the clock
(``tick(now)``, at :meth:`~Coordinator.next_deadline` at the latest); it answers with actions
the service carries out: :class:`Send` a message to an agent, :class:`WriteRow` (the merged
second is ready), :class:`Note` an event.  It reads no clock and touches no socket or file.

1. *Joining* (:class:`RunStage`): each Hello is answered by
   :func:`~sipha.loadtest.protocol.negotiate` (Welcome, or Refused naming both versions).
   When ``expect_agents`` have joined, every agent gets its Plan (:func:`share_plan`) with
   one common ``start_at``; past ``join_deadline`` the stage is FAILED.
2. *Running*: each agent moves through :mod:`~sipha.loadtest.phases`' table.  Reports are
   validated (:mod:`~sipha.loadtest.admission`) and merged into :attr:`run` (exactly:
   counters add, histograms add).  Second *s* is written once every RUNNING agent has
   reported it, or ``row_grace`` after it ended; a MISSING agent holds no row back.  A report
   merged after its row was written counts in the totals and is noted (``agent-report-late``,
   :attr:`AgentState.late`).  A Done's totals beyond the merged reports are reconciled into a
   later second (``agent-reconciled``, :attr:`AgentState.reconciled`; empty when healthy).
3. *Finished*: when every agent is DONE or LOST, the remaining rows are written.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from collections.abc import Mapping

import msgspec

from sipha.loadtest import protocol as p
from sipha.loadtest.admission import ReportBounds, check_report, check_totals
from sipha.loadtest.phases import AgentInput, AgentPhase, Effect, RunStage, transition
from sipha.loadtest.reconcile import counters, has_counts, unreported
from sipha.loadtest.shares import share_plan
from sipha.loadtest.stats import IntervalStats, RunStats, StatsDecodeError
from sipha.loadtest.uac import planned_rate

__all__ = ["Action", "AgentState", "Coordinator", "EventKind", "Note", "Send", "WriteRow",
           "share_plan"]

_MAX_DROP_NOTES = 20  # per reason: a hostile agent must not fill events.jsonl


class EventKind(enum.Enum):
    AGENT_JOINED = "agent-joined"
    AGENT_REFUSED = "agent-refused"
    AGENT_MISSING = "agent-missing"
    AGENT_BACK = "agent-back"
    AGENT_LOST = "agent-lost"
    AGENT_DONE = "agent-done"
    AGENT_RECONCILED = "agent-reconciled"
    AGENT_TOTALS_MISMATCH = "agent-totals-mismatch"
    AGENT_REPORT_LATE = "agent-report-late"
    FRAME_DROPPED = "frame-dropped"
    RUN_STARTED = "run-started"
    RUN_FINISHED = "run-finished"


@dataclasses.dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to the agent behind ``routing_id``."""

    routing_id: bytes
    message: p.Message


@dataclasses.dataclass(frozen=True, slots=True)
class WriteRow:
    """Write the merged row of ``second`` (it is in :attr:`Coordinator.run`)."""

    second: int
    target_rate: float


@dataclasses.dataclass(frozen=True, slots=True)
class Note:
    """Record event ``kind`` at unix time ``at``."""

    kind: EventKind
    at: float
    fields: Mapping[str, object]


Action = Send | WriteRow | Note


@dataclasses.dataclass
class AgentState:
    """What the controller knows of one agent."""

    agent_id: str
    host: str
    pid: int
    routing_id: bytes
    last_heard: float  # unix time
    last_second: int = -1
    phase: AgentPhase = AgentPhase.JOINED
    lost_at: float | None = None
    totals: IntervalStats | None = None  # from its Done
    scenario: p.ScenarioSnapshot | None = None  # XML scenarios: per-step stats, latest
    reported: IntervalStats = dataclasses.field(default_factory=IntervalStats)
    # Counters its Done held beyond its merged reports, moved into a later second.
    reconciled: IntervalStats = dataclasses.field(default_factory=IntervalStats)
    # Reports merged after their second's row was written (in the totals, not in the rows).
    late: IntervalStats = dataclasses.field(default_factory=IntervalStats)


class Coordinator:
    """Runs one plan over ``expect_agents`` agents (see the module docstring).

    ``heartbeat_timeout`` is when a silent agent is LOST; it is MISSING from
    ``missing_after`` (two heartbeats, at most ``heartbeat_timeout``).
    """

    def __init__(self, plan: p.Plan, *, expect_agents: int, run_id: str, now: float,
                 join_timeout: float = 60.0, start_delay: float = 1.0,
                 heartbeat_interval: float = 1.0, heartbeat_timeout: float = 3.5,
                 row_grace: float = 2.5) -> None:
        if expect_agents < 1:
            raise ValueError("expect_agents must be >= 1")
        self.plan = plan
        self.expect_agents = expect_agents
        self.run_id = run_id
        self.join_deadline = now + join_timeout
        self.join_timeout = join_timeout
        self.start_delay = start_delay
        self.heartbeat_interval = heartbeat_interval
        self.lost_after = heartbeat_timeout
        self.missing_after = min(2 * heartbeat_interval, heartbeat_timeout)
        self.row_grace = row_grace
        self.bounds = ReportBounds.from_plan(plan)
        self.stage = RunStage.JOINING
        self.agents: dict[str, AgentState] = {}
        self.by_routing: dict[bytes, AgentState] = {}
        self.run = RunStats()
        self.last_written = -1
        self.start_at = 0.0
        self.dropped: collections.Counter[str] = collections.Counter()
        self._next_beat = 0.0
        self._stop_sent = False
        self._rate_from: tuple[int, float] | None = None  # (second, rate) of a change

    # -- inputs ---------------------------------------------------------------------------------

    def on_frame(self, routing_id: bytes, data: bytes, now: float) -> list[Action]:
        """One frame from ``routing_id``; never raises for any bytes."""
        out: list[Action] = []
        state = self.by_routing.get(routing_id)
        agent = state.agent_id if state is not None else None
        try:
            msg = p.decode(data)
        except p.VersionMismatch as exc:
            out.append(Send(routing_id, p.Refused(reason=str(exc))))
            out.append(Note(EventKind.AGENT_REFUSED, now, {"reason": str(exc)}))
            return out
        except p.ProtocolError as exc:
            self._drop(out, "undecodable", agent, str(exc), now)
            return out
        if state is None:
            self._from_stranger(out, routing_id, msg, now)
            return out
        event, stats = self._classify(out, state, msg, now)
        self._apply(out, state, event, msg, stats, now)
        return out

    def tick(self, now: float) -> list[Action]:
        """Time passed: join deadline, heartbeats, silences, rows, the end."""
        out: list[Action] = []
        if self.stage is RunStage.JOINING:
            if now >= self.join_deadline:
                self.stage = RunStage.FAILED
            return out
        if self.stage is not RunStage.RUNNING:
            return out
        live = [a for a in self.agents.values()
                if a.phase in (AgentPhase.RUNNING, AgentPhase.MISSING)]
        if now >= self._next_beat:
            self._next_beat = now + self.heartbeat_interval
            beat = p.Heartbeat(agent_id="controller", seq=0, sent_at=now)
            out += [Send(a.routing_id, beat) for a in live]
        for a in live:
            silent = now - a.last_heard
            if silent > self.lost_after:
                self._apply(out, a, AgentInput.SILENT_TOO_LONG, None, None, now)
            elif silent > self.missing_after:
                self._apply(out, a, AgentInput.SILENT, None, None, now)
        self._write_ready(out, now)
        self._finish_if_over(out, now)
        return out

    def set_rate(self, rate: float, now: float) -> list[Action]:
        """An operator's rate change: each live agent gets its share (the plan divided the
        rate by the agents it was shared among). Raises ValueError when no run is going."""
        if self.stage is not RunStage.RUNNING or self._stop_sent:
            raise ValueError("no run is going: nothing to change")
        if rate < 0 or rate != rate:
            raise ValueError(f"rate {rate!r}: expected calls/s >= 0")
        second = max(0, int(now - self.start_at) + 1)
        self._rate_from = (second, rate)
        share = p.SetRate(rate=rate / max(1, len(self.agents)))
        return [Send(a.routing_id, share) for a in self.agents.values()
                if a.phase in (AgentPhase.RUNNING, AgentPhase.MISSING)]

    def target_rate(self, second: int) -> float:
        """The whole run's rate during ``second``: the plan's, or an operator's change."""
        changed = self._rate_from
        if changed is not None and second >= changed[0] and (
                self.plan.duration is None or second < self.plan.duration):
            return changed[1]
        return planned_rate(self.plan, second)

    def stop(self, now: float) -> list[Action]:
        """Ask every live agent to stop starting calls (they drain and report Done)."""
        if self._stop_sent or self.stage is not RunStage.RUNNING:
            return []
        self._stop_sent = True
        stop = p.Stop(reason="stopped by the controller")
        return [Send(a.routing_id, stop) for a in self.agents.values()
                if a.phase in (AgentPhase.RUNNING, AgentPhase.MISSING)]

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must run next (None: nothing pending)."""
        if self.stage is RunStage.JOINING:
            return self.join_deadline
        if self.stage is not RunStage.RUNNING:
            return None
        times = [self._next_beat]
        for a in self.agents.values():
            if a.phase is AgentPhase.RUNNING:
                times.append(a.last_heard + self.missing_after)
            elif a.phase is AgentPhase.MISSING:
                times.append(a.last_heard + self.lost_after)
        seconds = self.run.seconds()
        if seconds and seconds[-1] > self.last_written:
            times.append(self._overdue_at(self.last_written + 1))
        return min(times)

    # -- decisions ------------------------------------------------------------------------------

    def _from_stranger(self, out: list[Action], routing_id: bytes, msg: p.Message,
                       now: float) -> None:
        if not isinstance(msg, p.Hello):
            self._drop(out, "not-joined", None, type(msg).__name__, now)
            return
        if self.stage is not RunStage.JOINING:
            # Late or restarted agents cannot join a run in progress.
            out.append(Send(routing_id, p.Refused(reason="a run is already in progress")))
            return
        answer = p.negotiate(msg, run_id=self.run_id,
                             heartbeat_interval=self.heartbeat_interval)
        out.append(Send(routing_id, answer))
        if isinstance(answer, p.Refused):
            out.append(Note(EventKind.AGENT_REFUSED, now,
                            {"agent": msg.agent_id, "reason": answer.reason}))
            return
        if msg.agent_id in self.agents:
            return  # the same id from another connection: welcomed, not counted twice
        state = AgentState(msg.agent_id, msg.host, msg.pid, routing_id, now)
        self.agents[msg.agent_id] = state
        self.by_routing[routing_id] = state
        out.append(Note(EventKind.AGENT_JOINED, now,
                        {"agent": msg.agent_id, "host": msg.host, "pid": msg.pid}))
        if len(self.agents) >= self.expect_agents:
            self._start(out, now)

    def _classify(self, out: list[Action], state: AgentState, msg: p.Message,
                  now: float) -> tuple[AgentInput, IntervalStats | None]:
        if isinstance(msg, p.Hello):
            return AgentInput.HELLO, None
        if isinstance(msg, p.Heartbeat):
            return AgentInput.HEARTBEAT, None
        if not isinstance(msg, p.StatsReport | p.Done):
            self._drop(out, "unexpected", state.agent_id, type(msg).__name__, now)
            return AgentInput.REJECTED, None
        report = isinstance(msg, p.StatsReport)
        snapshot = msg.interval if isinstance(msg, p.StatsReport) else msg.totals
        try:
            stats = IntervalStats.from_wire(snapshot)
        except StatsDecodeError as exc:
            self._drop(out, "bad-stats", state.agent_id, str(exc), now)
            return AgentInput.REJECTED, None
        elapsed = now - self.start_at
        why = (check_report(self.bounds, msg.second, stats, elapsed=elapsed)
               if isinstance(msg, p.StatsReport)
               else check_totals(self.bounds, stats, elapsed=elapsed))
        if why is not None:
            self._drop(out, "implausible", state.agent_id, why, now)
            return AgentInput.REJECTED, None
        return (AgentInput.REPORT if report else AgentInput.DONE), stats

    def _apply(self, out: list[Action], state: AgentState, event: AgentInput,
               msg: p.Message | None, stats: IntervalStats | None, now: float) -> None:
        phase, effects = transition(state.phase, event)
        state.phase = phase
        agent = state.agent_id
        for effect in effects:
            if effect is Effect.WELCOME and isinstance(msg, p.Hello):
                out.append(Send(state.routing_id, p.negotiate(
                    msg, run_id=self.run_id, heartbeat_interval=self.heartbeat_interval)))
            elif effect is Effect.SEND_PLAN:
                index = list(self.agents).index(agent)
                share = share_plan(self.plan, agents=len(self.agents), index=index,
                                   start_at=self.start_at)
                out.append(Send(state.routing_id,
                                msgspec.structs.replace(share, run_id=self.run_id)))
            elif effect is Effect.HEARD:
                state.last_heard = now
            elif effect is Effect.MERGE and isinstance(msg, p.StatsReport) and stats:
                if msg.scenario is not None and msg.second >= state.last_second:
                    state.scenario = msg.scenario  # cumulative: the latest one stands
                self._merge(out, state, msg.second, stats, now)
            elif effect is Effect.FINISH and stats is not None:
                state.totals = stats
                if isinstance(msg, p.Done) and msg.scenario is not None:
                    state.scenario = msg.scenario
                self._reconcile(out, state, now)
                out.append(Note(EventKind.AGENT_DONE, now, {"agent": agent}))
            elif effect is Effect.NOTE_MISSING:
                out.append(Note(EventKind.AGENT_MISSING, now,
                                {"agent": agent, "last_heard": state.last_heard}))
            elif effect is Effect.NOTE_BACK:
                out.append(Note(EventKind.AGENT_BACK, now,
                                {"agent": agent, "silent": now - state.last_heard}))
            elif effect is Effect.NOTE_LOST:
                state.lost_at = state.last_heard
                out.append(Note(EventKind.AGENT_LOST, now, {
                    "agent": agent, "last_heard": state.last_heard,
                    "last_second": state.last_second}))
        if event is AgentInput.DONE:
            self._finish_if_over(out, now)

    def _start(self, out: list[Action], now: float) -> None:
        self.stage = RunStage.RUNNING
        self.start_at = now + self.start_delay
        self._next_beat = now
        out.append(Note(EventKind.RUN_STARTED, now,
                        {"agents": len(self.agents), "start_at": self.start_at}))
        for state in self.agents.values():
            self._apply(out, state, AgentInput.START, None, None, now)

    def _merge(self, out: list[Action], state: AgentState, second: int,
               stats: IntervalStats, now: float) -> None:
        if self.run.add(state.agent_id, second, stats):
            state.reported.extend(stats)
            if second <= self.last_written and has_counts(stats):
                state.late.merge(stats)
                out.append(Note(EventKind.AGENT_REPORT_LATE, now, {
                    "agent": state.agent_id, "second": second, **counters(stats)}))
        state.last_second = max(state.last_second, second)

    def _reconcile(self, out: list[Action], state: AgentState, now: float) -> None:
        """Make the merged counts add up to the agent's own totals, and say so: whatever the
        Done holds beyond the merged reports goes into the next unwritten second; totals
        that cannot be reconciled (the reports hold more) stay as reported, noted."""
        own, seen = state.totals, state.reported
        if own is None:
            return
        gap = unreported(own, seen)
        if gap is None:
            out.append(Note(EventKind.AGENT_TOTALS_MISMATCH, now, {
                "agent": state.agent_id, "own": counters(own), "reported": counters(seen)}))
            return
        if gap.is_empty():
            return
        second = max(state.last_second, self.last_written) + 1
        if self.run.add(state.agent_id, second, gap):
            state.reported.extend(gap)
            state.reconciled.merge(gap)
            state.last_second = second
            out.append(Note(EventKind.AGENT_RECONCILED, now, {
                "agent": state.agent_id, "second": second, **counters(gap)}))

    def _overdue_at(self, second: int) -> float:
        return self.start_at + second + 1 + self.row_grace

    def _write_ready(self, out: list[Action], now: float | None) -> None:
        """Write every second all RUNNING agents have reported (``now`` None: all)."""
        seconds = self.run.seconds()
        if not seconds:
            return
        s = self.last_written + 1
        while s <= seconds[-1]:
            if now is not None and now <= self._overdue_at(s) and any(
                a.phase is AgentPhase.RUNNING and a.last_second < s
                for a in self.agents.values()
            ):
                break
            out.append(WriteRow(s, self.target_rate(s)))
            self.last_written = s
            s += 1

    def _finish_if_over(self, out: list[Action], now: float) -> None:
        if self.stage is not RunStage.RUNNING or any(
            a.phase in (AgentPhase.RUNNING, AgentPhase.MISSING) for a in self.agents.values()
        ):
            return
        self._write_ready(out, None)
        self.stage = RunStage.FINISHED
        out.append(Note(EventKind.RUN_FINISHED, now, {
            "done": [a for a, s in self.agents.items() if s.phase is AgentPhase.DONE],
            "lost": [a for a, s in self.agents.items() if s.phase is AgentPhase.LOST]}))

    def _drop(self, out: list[Action], reason: str, agent: str | None, detail: str,
              now: float) -> None:
        """Count a frame that is not used, and note it (the first few times per reason)."""
        self.dropped[reason] += 1
        if self.dropped[reason] <= _MAX_DROP_NOTES:
            out.append(Note(EventKind.FRAME_DROPPED, now, {
                "reason": reason, "agent": agent or "", "detail": detail[:200]}))
