"""Controller + agents over ZeroMQ: merged totals equal the sum of the agents' own counts; a
killed agent is reported lost and the run still completes and writes its outputs; an agent of
another protocol version is refused with a clear reason."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sipha.common.loop import run
from sipha.common.process import terminate
from sipha.loadtest.agent import Agent, AgentRefused
from sipha.loadtest.api import agent_command, run_distributed
from sipha.loadtest.controller import Controller, RunResult, share_plan
from sipha.loadtest.phases import AgentPhase
from sipha.loadtest.protocol import UserRange
from sipha.loadtest.stats import IntervalStats
from sipha.loadtest.stats_output import read_sipp_stat_csv
from tests.loadtest.helpers import make_plan
from tests.sipp import uas


def test_share_plan_splits_rates_bounds_and_users_exactly() -> None:
    plan = make_plan(5060, rate=100, max_calls=1001,
                     users=UserRange(prefix="u", first=1, count=10, domain="d"))
    shares = [share_plan(plan, agents=3, index=i, start_at=5.0) for i in range(3)]
    assert sum(s.rate for s in shares) == pytest.approx(100)
    assert sum(s.max_calls or 0 for s in shares) == 1001
    assert [(s.users.first, s.users.count) for s in shares if s.users] == [(1, 4), (5, 3), (8, 3)]
    assert len({s.seed for s in shares}) == 3
    assert {s.start_at for s in shares} == {5.0}


def test_two_agents_merged_totals_equal_the_sum_of_their_counts(tmp_path: Path) -> None:
    with uas() as (port, _proc):
        time.sleep(0.3)
        plan = make_plan(port, rate=300, duration=3.0)
        result = run(run_distributed(plan, agents=2, results_dir=tmp_path))
    assert sorted(result.agents) == ["agent-1", "agent-2"]
    assert all(a.phase is AgentPhase.DONE for a in result.agents.values())
    # The agents joined over CurveZMQ with keys made for the run; nothing was refused.
    assert (result.dropped, result.refused_keys) == ({}, 0)
    own = IntervalStats()
    for a in result.agents.values():
        assert a.totals is not None
        assert a.totals.calls_attempted > 0
        own.merge(a.totals)
    merged = result.totals
    assert merged.calls_attempted == own.calls_attempted == 900
    assert merged.calls_successful == own.calls_successful == 900
    assert merged.histogram("setup_200").get_total_count() == 900  # type: ignore[union-attr]
    # Nothing went through the safety net: the per-second reports alone, as merged and as
    # written row by row, add up to the agents' own totals.
    assert result.reconciled.is_empty()
    assert result.late.is_empty()
    assert not [e for e in result.events
                if e["event"] in ("agent-reconciled", "agent-report-late", "agent-totals-mismatch")]
    series = IntervalStats()
    for _, stats in result.run.series():
        series.extend(stats)
    rows = read_sipp_stat_csv(tmp_path / "stats.csv")
    written = IntervalStats()
    for r in rows:
        written.extend(r.stats)
    for name in ("calls_attempted", "calls_successful", "calls_failed", "retransmissions"):
        assert getattr(series, name) == getattr(own, name), name
        assert getattr(written, name) == getattr(own, name), name
    assert series.failed_by_reason == own.failed_by_reason
    summary = json.loads((tmp_path / "stats.jsonl").read_text().splitlines()[-1])
    assert summary["type"] == "summary"
    assert summary["calls_successful"] == 900


def spawn_agents(port: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen(agent_command(f"127.0.0.1:{port}", f"agent-{i}"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in (1, 2)
    ]


async def run_with_fault(
    controller: Controller, procs: list[subprocess.Popen[bytes]], at: float,
    fault: Callable[[], None],
) -> RunResult:
    """Run the controller with its agents, call ``fault()`` ``at`` seconds into the run, and
    stop the agents whatever happens."""

    async def inject() -> None:
        # The controller sets start_at when it sends the plans (a plain attribute: no event
        # to wait on).
        while controller.start_at == 0.0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(controller.start_at + at - time.time())
        fault()

    try:
        injector = asyncio.get_running_loop().create_task(inject())
        result = await controller.run()
        await injector
    finally:
        for p in procs:
            await asyncio.to_thread(terminate, p)
    return result


def test_killed_agent_is_reported_lost_and_the_run_completes(tmp_path: Path) -> None:
    with uas() as (port, _proc):
        time.sleep(0.3)
        plan = make_plan(port, rate=100, duration=5.0)
        killed_at = 0.0

        async def scenario() -> RunResult:
            controller = Controller(plan, expect_agents=2, results_dir=tmp_path,
                                    heartbeat_timeout=2.0, join_timeout=20)
            procs = spawn_agents(controller.bind())

            def kill_one() -> None:
                nonlocal killed_at
                killed_at = time.time()
                os.kill(procs[0].pid, signal.SIGKILL)

            return await run_with_fault(controller, procs, 2.2, kill_one)

        result = run(scenario())
    lost = result.agents["agent-1"]
    assert lost.phase is AgentPhase.LOST
    assert result.agents["agent-2"].phase is AgentPhase.DONE
    assert lost.lost_at is not None
    assert abs(lost.lost_at - killed_at) < 1.5
    # What the lost agent reported before dying is kept: ~2 s of its 50 calls/s.
    assert 80 <= lost.reported.calls_attempted <= 160
    totals = result.totals
    assert totals.calls_attempted == lost.reported.calls_attempted + 250
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    lost_events = [e for e in events if e["event"] == "agent-lost"]
    assert [e["agent"] for e in lost_events] == ["agent-1"]
    assert events[-1]["event"] == "run-finished"
    assert events[-1]["lost"] == ["agent-1"]
    assert len(read_sipp_stat_csv(tmp_path / "stats.csv")) >= 5


def test_a_stalled_controller_loses_no_live_agent(tmp_path: Path) -> None:
    # The controller's own loop stalls for longer than the heartbeat timeout (a busy machine);
    # meanwhile both agents keep beating. Their queued frames must be read before anyone is
    # judged silent: an agent is lost for its own silence, never for the controller's.
    with uas() as (port, _proc):
        time.sleep(0.3)
        plan = make_plan(port, rate=50, duration=4.0)

        async def scenario() -> RunResult:
            controller = Controller(plan, expect_agents=2, results_dir=tmp_path,
                                    heartbeat_timeout=2.0, join_timeout=20)
            procs = spawn_agents(controller.bind())
            # time.sleep on the controller's loop: a stall, on purpose.
            return await run_with_fault(controller, procs, 1.5, lambda: time.sleep(2.6))

        result = run(scenario())
    assert {a: s.phase for a, s in result.agents.items()} == {
        "agent-1": AgentPhase.DONE, "agent-2": AgentPhase.DONE
    }
    # Nobody even went missing: the queued heartbeats were read before silence was judged.
    assert not [e for e in result.events if e["event"] in ("agent-missing", "agent-lost")]
    assert result.totals.calls_attempted == 200


def test_agent_of_another_protocol_version_is_refused() -> None:
    plan = make_plan(5060)

    async def scenario() -> str:
        controller = Controller(plan, expect_agents=1, join_timeout=3)
        cport = controller.bind()
        agent = Agent(f"127.0.0.1:{cport}", agent_id="old", version=99, join_timeout=5)
        ctask = asyncio.get_running_loop().create_task(controller.run())
        with pytest.raises(AgentRefused) as refused:
            await agent.run()
        with pytest.raises(TimeoutError):
            await ctask
        return str(refused.value)

    reason = run(scenario())
    assert "version 99" in reason
    assert "version 1" in reason
