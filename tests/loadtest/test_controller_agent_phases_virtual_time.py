"""The load controller's coordinator on virtual time: the agent phase table answers every
(phase, input) pair as documented; a silent agent goes missing, holds no row back, and heals
when heard; a lost agent stays lost but its reports are kept; any bytes at any moment are
dropped and counted, never raised; merged totals are exactly the accepted reports."""

from __future__ import annotations

import os

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.loadtest import protocol as p
from sipha.loadtest.coordinator import Coordinator, EventKind, Note, Send, WriteRow
from sipha.loadtest.phases import TABLE, AgentInput, AgentPhase, Effect, RunStage, transition
from sipha.loadtest.stats import IntervalStats
from tests.loadtest.helpers import make_plan

LIVE = (AgentPhase.RUNNING, AgentPhase.MISSING)
MESSAGES = (AgentInput.HELLO, AgentInput.HEARTBEAT, AgentInput.REPORT, AgentInput.DONE)


def documented(phase: AgentPhase, event: AgentInput) -> tuple[AgentPhase, set[Effect]]:
    """The rules as phases.py's docstring states them, written independently of TABLE."""
    if event is AgentInput.REJECTED:
        return phase, {Effect.DROP}
    if phase in (AgentPhase.DONE, AgentPhase.LOST):  # final; reports still kept
        return phase, {Effect.MERGE} if event is AgentInput.REPORT else {Effect.IGNORE}
    if phase is AgentPhase.JOINED:
        if event is AgentInput.START:
            return AgentPhase.RUNNING, {Effect.SEND_PLAN, Effect.HEARD}
        if event is AgentInput.HELLO:
            return phase, {Effect.WELCOME}
        if event in (AgentInput.REPORT, AgentInput.DONE):
            return phase, {Effect.DROP}  # no plan yet: nothing to report
        return phase, {Effect.IGNORE}
    # RUNNING or MISSING
    if event is AgentInput.START:
        return phase, {Effect.IGNORE}
    if event is AgentInput.SILENT_TOO_LONG:
        return AgentPhase.LOST, {Effect.NOTE_LOST}
    if event is AgentInput.SILENT:
        if phase is AgentPhase.RUNNING:
            return AgentPhase.MISSING, {Effect.NOTE_MISSING}
        return phase, {Effect.IGNORE}
    effects = {Effect.HEARD}
    if phase is AgentPhase.MISSING:
        effects.add(Effect.NOTE_BACK)  # heard again: it heals
    if event is AgentInput.REPORT:
        effects.add(Effect.MERGE)
    if event is AgentInput.DONE:
        return AgentPhase.DONE, effects | {Effect.FINISH}
    return AgentPhase.RUNNING, effects


def test_every_phase_and_input_has_its_documented_answer() -> None:
    assert len(TABLE) == len(AgentPhase) * len(AgentInput)
    for phase in AgentPhase:
        for event in AgentInput:
            after, effects = transition(phase, event)
            assert (after, set(effects)) == documented(phase, event), (phase, event)
            assert len(effects) == len(set(effects)), (phase, event)


# -- driving the coordinator --------------------------------------------------------------------

T0 = 1_000_000.0


def hello(agent: str) -> bytes:
    return p.encode(p.Hello(agent_id=agent, version=p.PROTOCOL_VERSION, host="h",
                            pid=os.getpid(), cores=1))


def beat(agent: str) -> bytes:
    return p.encode(p.Heartbeat(agent_id=agent, seq=1, sent_at=0.0))


def calls(n: int) -> IntervalStats:
    s = IntervalStats()
    for _ in range(n):
        s.record_attempt()
        s.record_success(0.02)
    return s


def report(agent: str, second: int, n: int) -> bytes:
    return p.encode(p.StatsReport(agent_id=agent, second=second, interval=calls(n).to_wire()))


def done(agent: str, n: int) -> bytes:
    return p.encode(p.Done(agent_id=agent, totals=calls(n).to_wire()))


def started(agents: int = 2) -> Coordinator:
    c = Coordinator(make_plan(5060, rate=100, duration=10.0), expect_agents=agents,
                    run_id="r", now=T0, start_delay=0.0, heartbeat_interval=1.0,
                    heartbeat_timeout=3.5, row_grace=2.5, join_timeout=5.0)
    for i in range(agents):
        actions = c.on_frame(f"a{i}".encode(), hello(f"a{i}"), T0)
    assert c.stage is RunStage.RUNNING
    plans = [a for a in actions if isinstance(a, Send) and isinstance(a.message, p.Plan)]
    assert [a.routing_id for a in plans] == [f"a{i}".encode() for i in range(agents)]
    return c


def notes(actions: list[object], kind: EventKind) -> list[Note]:
    return [a for a in actions if isinstance(a, Note) and a.kind is kind]


def rows(actions: list[object]) -> list[int]:
    return [a.second for a in actions if isinstance(a, WriteRow)]


def test_a_silent_agent_goes_missing_holds_no_row_and_heals_when_heard() -> None:
    c = started()
    t = T0 + 1.2
    c.on_frame(b"a0", report("a0", 0, 5), t)
    c.on_frame(b"a1", report("a1", 0, 7), t)
    assert rows(c.tick(t)) == [0]
    # a1 falls silent; a0 goes on reporting.
    for n in (1, 2):
        t = T0 + n + 1.2
        c.on_frame(b"a0", report("a0", n, 5), t)
        c.tick(t)
    assert c.agents["a1"].phase is AgentPhase.RUNNING
    assert c.last_written == 0  # second 1 waits for the running a1 (row_grace not over)
    t = T0 + 3.3  # silent for 2.1 s > missing_after (2 heartbeats)
    actions = c.tick(t)
    assert [n.fields["agent"] for n in notes(actions, EventKind.AGENT_MISSING)] == ["a1"]
    assert c.agents["a1"].phase is AgentPhase.MISSING
    assert rows(actions) == [1, 2]  # a missing agent holds nothing back
    c.on_frame(b"a0", report("a0", 3, 5), t)
    assert rows(c.tick(t)) == [3]
    # Heard again before lost_after: running again, its late second still counts.
    actions = c.on_frame(b"a1", report("a1", 1, 7), t + 0.1)
    assert [n.fields["agent"] for n in notes(actions, EventKind.AGENT_BACK)] == ["a1"]
    assert notes(actions, EventKind.AGENT_REPORT_LATE)
    assert c.agents["a1"].phase is AgentPhase.RUNNING
    assert c.run.totals().calls_attempted == 5 * 4 + 7 * 2


def test_a_lost_agent_stays_lost_its_reports_kept_and_the_run_ends() -> None:
    c = started()
    c.on_frame(b"a1", report("a1", 0, 7), T0 + 1.1)
    t = T0 + 1.1
    while c.agents["a1"].phase is not AgentPhase.LOST:
        t += 0.5
        c.on_frame(b"a0", beat("a0"), t)
        actions = c.tick(t)
    assert t - (T0 + 1.1) > c.lost_after
    lost = notes(actions, EventKind.AGENT_LOST)
    assert [(n.fields["agent"], n.fields["last_second"]) for n in lost] == [("a1", 0)]
    assert c.agents["a1"].lost_at == T0 + 1.1
    c.on_frame(b"a1", beat("a1"), t + 0.1)  # no resurrection
    c.on_frame(b"a1", report("a1", 1, 3), t + 0.1)  # but its counts are kept
    assert c.agents["a1"].phase is AgentPhase.LOST
    actions = c.on_frame(b"a0", done("a0", 0), t + 0.2)
    assert c.stage is RunStage.FINISHED
    assert [n.fields for n in notes(actions, EventKind.RUN_FINISHED)] == [
        {"done": ["a0"], "lost": ["a1"]}]
    assert c.run.totals().calls_attempted == 10
    assert c.next_deadline() is None


def test_next_deadline_is_the_earliest_silence_beat_or_row() -> None:
    c = started()
    c.tick(T0)  # first heartbeats out; next at T0 + 1
    assert c.next_deadline() == T0 + 1.0
    c.tick(T0 + 1.0)
    c.on_frame(b"a0", beat("a0"), T0 + 1.5)
    c.on_frame(b"a1", beat("a1"), T0 + 1.5)
    c.on_frame(b"a0", report("a0", 0, 1), T0 + 1.5)
    assert c.next_deadline() == T0 + 2.0  # the beat (rows wait until T0 + 3.5)
    c.tick(T0 + 2.0)
    assert c.next_deadline() == pytest.approx(T0 + 3.0)


def test_the_join_fails_at_its_deadline() -> None:
    c = Coordinator(make_plan(5060), expect_agents=2, run_id="r", now=T0, join_timeout=5.0)
    c.on_frame(b"a0", hello("a0"), T0 + 1)
    assert c.next_deadline() == T0 + 5.0
    c.tick(T0 + 4.9)
    assert c.stage is RunStage.JOINING
    c.tick(T0 + 5.0)
    assert c.stage is RunStage.FAILED


frame = st.one_of(
    st.binary(max_size=64),
    st.builds(hello, st.sampled_from(["a0", "a1", "x"])),
    st.builds(beat, st.sampled_from(["a0", "a1"])),
    st.builds(report, st.sampled_from(["a0", "a1"]),
              st.integers(min_value=0, max_value=3_000_000), st.integers(0, 20)),
    st.builds(done, st.sampled_from(["a0", "a1"]), st.integers(0, 50)),
)
step = st.tuples(st.sampled_from([b"a0", b"a1", b"x"]), frame,
                 st.floats(min_value=0.0, max_value=3.0))


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(step, max_size=40))
def test_any_frames_at_any_time_never_raise_and_totals_are_the_accepted_reports(
        steps: list[tuple[bytes, bytes, float]]) -> None:
    c = started()
    t = T0
    finals: dict[str, AgentPhase] = {}
    for routing_id, data, advance in steps:
        t += advance
        c.on_frame(routing_id, data, t)
        c.tick(t)
        for name, state in c.agents.items():
            if name in finals:
                assert state.phase is finals[name], name  # DONE and LOST are final
            elif state.phase in (AgentPhase.DONE, AgentPhase.LOST):
                finals[name] = state.phase
        assert c.last_written <= 10 + 40 + 30  # never a row past the plan's last second
    merged = IntervalStats()
    for state in c.agents.values():
        merged.merge(state.reported)
    assert c.run.totals().calls_attempted == merged.calls_attempted


scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.floats(),
                   st.text(max_size=20), st.binary(max_size=20))
fields = st.dictionaries(
    st.sampled_from(["agent_id", "second", "interval", "totals", "seq", "sent_at", "version",
                     "host", "pid", "cores", "calls_attempted", "setup_200", "reason"]),
    st.one_of(scalar, st.dictionaries(st.sampled_from(["calls_attempted", "calls_failed",
                                                       "failed_by_reason", "setup_200",
                                                       "answered_slots"]), scalar)),
    max_size=6,
)
near_frame = st.builds(
    lambda version, tag, body: msgspec.msgpack.encode([version, {"type": tag, **body}]),
    st.sampled_from([1, 1, 1, 0, 2]),
    st.sampled_from(["hello", "heartbeat", "stats", "done", "plan", "stop", "welcome", "x"]),
    fields,
)


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(near_frame, max_size=10))
def test_frames_that_almost_follow_the_protocol_are_dropped_and_counted(
        frames: list[bytes]) -> None:
    c = started()
    for n, data in enumerate(frames):
        dropped = sum(c.dropped.values())
        actions = c.on_frame(b"a0", data, T0 + 1 + n * 0.1)
        try:
            msg = p.decode(data)
        except p.VersionMismatch:
            # Another version is answered with a Refused that names both versions.
            assert [a.message for a in actions if isinstance(a, Send)] == [p.Refused(
                reason=str(p.VersionMismatch(msgspec.msgpack.decode(data)[0])))]
            continue
        except p.ProtocolError:
            assert sum(c.dropped.values()) == dropped + 1
            continue
        # Well-formed: a message agents never send is dropped too.
        if not isinstance(msg, p.Hello | p.Heartbeat | p.StatsReport | p.Done):
            assert sum(c.dropped.values()) == dropped + 1
    assert c.agents["a0"].phase in (AgentPhase.RUNNING, AgentPhase.DONE)


def test_stop_goes_once_to_every_live_agent() -> None:
    c = started()
    c.on_frame(b"a1", done("a1", 0), T0 + 0.5)
    sent = c.stop(T0 + 1)
    assert [(a.routing_id, type(a.message)) for a in sent if isinstance(a, Send)] == [
        (b"a0", p.Stop)]
    assert c.stop(T0 + 2) == []
