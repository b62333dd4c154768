"""An agent's per-step statistics travel in its Done and come back equal (counters, rtd
repartitions, HDR histograms), so the controller's merge is the merge of the agents' own
statistics; a snapshot that cannot be the shipped scenario's is refused, and files too big
for one control frame are refused before any agent starts."""

from __future__ import annotations

import msgspec
import pytest

from sipha.loadtest import protocol as p
from sipha.loadtest.coordinator import Coordinator
from sipha.loadtest.phases import AgentPhase
from sipha.loadtest.scenario.builtin import builtin_text
from sipha.loadtest.scenario.distributed import merge_agents
from sipha.loadtest.scenario.stats import ScenarioStats, StepStats
from sipha.loadtest.scenario.wire import (
    MAX_SHIPPED_BYTES,
    RtdSnapshot,
    ScenarioSnapshot,
    ShippedFile,
    XmlRunOptions,
    XmlScenario,
    check_size,
    from_snapshot,
    share_xml,
    to_snapshot,
)
from sipha.loadtest.stats import IntervalStats
from tests.loadtest.helpers import make_plan
from tests.loadtest.scenario.helpers import engine, pump, scenario
from tests.loadtest.test_controller_agent_phases_virtual_time import T0, calls, hello

UAC = builtin_text("uac").decode()


def _run(calls: int, seed: int) -> ScenarioStats:
    a = engine(UAC, seed=seed)
    b = engine(builtin_text("uas").decode(), port=5062, remote=5061, seed=seed)
    for k in range(calls):
        a.start_call(k * 0.001)
    pump(a, b, until=0.05, step=0.001)
    return a.stats


def _through_done(stats: ScenarioStats) -> ScenarioStats:
    done = p.Done(agent_id="a", totals=IntervalStats().to_wire(), scenario=to_snapshot(stats))
    back = p.decode(p.encode(done))
    assert isinstance(back, p.Done)
    assert back.scenario is not None
    return from_snapshot(back.scenario, scenario(UAC))


def test_merged_after_the_trip_equals_merged_at_home() -> None:
    one, two = _run(3, 1), _run(5, 2)
    home = ScenarioStats(steps=[StepStats() for _ in one.steps])
    home.merge(one)
    home.merge(two)
    away = ScenarioStats(steps=[StepStats() for _ in one.steps])
    away.merge(_through_done(one))
    away.merge(_through_done(two))
    assert [vars_(s) for s in away.steps] == [vars_(s) for s in home.steps]
    assert (away.created, away.successful, dict(away.failed)) == (8, 8, {})
    r, h = away.rtd["1"], home.rtd["1"]
    assert (r.count, r.low, r.high, r.buckets) == (h.count, h.low, h.high, h.buckets)
    assert r.hist is not None
    assert h.hist is not None
    assert r.hist.get_total_count() == 8
    for q in (50.0, 90.0, 100.0):  # the merged histogram is one histogram of every sample
        assert r.hist.get_value_at_percentile(q) == h.hist.get_value_at_percentile(q)


def vars_(s: StepStats) -> tuple[int, ...]:
    return (s.messages, s.retrans, s.timeouts, s.unexpected, s.lost)


def _bad(snap: object) -> str:
    with pytest.raises(ValueError, match=r"\w") as info:
        from_snapshot(snap, scenario(UAC))  # type: ignore[arg-type]
    return str(info.value)


def test_a_snapshot_of_another_scenario_is_refused() -> None:
    snap = to_snapshot(_run(2, 1))
    assert "steps" in _bad(msgspec.structs.replace(snap, steps=snap.steps[:-1]))
    assert "not in the scenario" in _bad(msgspec.structs.replace(
        snap, rtd={**snap.rtd, "nine": RtdSnapshot()}))
    lying = msgspec.structs.replace(snap.rtd["1"], count=snap.rtd["1"].count + 1)
    assert "samples" in _bad(msgspec.structs.replace(snap, rtd={"1": lying}))
    assert "successful" in _bad(msgspec.structs.replace(snap, failed={"unexpected": 5}))
    assert "histogram" in _bad(msgspec.structs.replace(
        snap, rtd={"1": msgspec.structs.replace(snap.rtd["1"], hist="bm90IGEgYmxvYg==")}))


def test_negative_counters_never_decode() -> None:
    done = p.Done(agent_id="a", totals=IntervalStats().to_wire(), scenario=to_snapshot(
        _run(1, 1)))
    raw = msgspec.msgpack.decode(p.encode(done))
    raw[1]["scenario"]["created"] = -1
    frame = msgspec.msgpack.encode(raw)
    with pytest.raises(p.ProtocolError):
        p.decode(frame)


def test_shares_split_users_rows_and_ports() -> None:
    xml = XmlScenario(scenario=ShippedFile(name="s.xml", data=b"<scenario/>"),
                      run=XmlRunOptions(users=5, local_port=5070, rate_increase=4.0,
                                        rate_max=10.0))
    shares = [share_xml(xml, agents=2, index=i) for i in range(2)]
    assert [s.run.users for s in shares] == [3, 2]
    assert [s.run.local_port for s in shares] == [5070, 5071]
    assert [(s.share_index, s.share_count) for s in shares] == [(0, 2), (1, 2)]
    assert [(s.run.rate_increase, s.run.rate_max) for s in shares] == [(2.0, 5.0)] * 2


def test_files_too_big_for_one_frame_are_refused() -> None:
    big = ShippedFile(name="users.csv", data=b"x" * (MAX_SHIPPED_BYTES // 2 + 1))
    xml = XmlScenario(scenario=ShippedFile(name="s.xml", data=b"<scenario/>"),
                      injections=[big, big])
    with pytest.raises(ValueError, match="PRINTF"):
        check_size(xml)


def test_the_controller_keeps_each_agents_latest_statistics() -> None:
    """Reports carry the per-step statistics so far; a late report never takes the place of
    a newer one; a lost agent's last ones are merged, and the merge says they are partial."""
    c = Coordinator(make_plan(5060, rate=100, duration=10.0), expect_agents=2, run_id="r",
                    now=T0, start_delay=0.0, heartbeat_timeout=3.5)
    for agent in ("a0", "a1"):
        c.on_frame(agent.encode(), hello(agent), T0)
    two, three = to_snapshot(_run(2, 1)), to_snapshot(_run(3, 2))

    def report(agent: str, second: int, snap: ScenarioSnapshot) -> bytes:
        return p.encode(p.StatsReport(agent_id=agent, second=second,
                                      interval=calls(1).to_wire(), scenario=snap))

    c.on_frame(b"a0", report("a0", 1, three), T0 + 2.1)
    c.on_frame(b"a0", report("a0", 0, two), T0 + 2.2)  # late: a0's second 1 stands
    c.on_frame(b"a1", report("a1", 0, two), T0 + 1.1)
    assert c.agents["a0"].scenario == three
    c.on_frame(b"a0", p.encode(p.Done(agent_id="a0", totals=calls(2).to_wire(),
                                      scenario=three)), T0 + 2.3)
    c.tick(T0 + 10.0)  # a1 silent: lost
    assert c.agents["a1"].phase is AgentPhase.LOST
    merged, problems = merge_agents(scenario(UAC), c.agents)
    assert (merged.created, merged.successful) == (5, 5)
    assert problems == ["agent a1 lost: its statistics up to second 0 only"]
