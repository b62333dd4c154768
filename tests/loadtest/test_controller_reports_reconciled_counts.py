"""The controller's safety net never hides a lost report: when an agent's Done totals hold
more than its per-second reports, the difference still reaches the totals, and the run says
so (an ``agent-reconciled`` event with the counters moved, ``RunResult.reconciled``).  A
report that comes after its row was written is said too (``agent-report-late``)."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import zmq
import zmq.asyncio

from sipha.common.loop import run
from sipha.loadtest import protocol as p
from sipha.loadtest.controller import Controller, RunResult, unreported
from sipha.loadtest.stats import FailureReason, IntervalStats
from tests.loadtest.helpers import make_plan


def second(attempted: int, ok: int, busy: int = 0, timeouts: int = 0) -> IntervalStats:
    s = IntervalStats()
    s.calls_attempted = attempted
    for _ in range(ok):
        s.record_success(0.01)
    for _ in range(busy):
        s.record_failure(486)
    for _ in range(timeouts):
        s.record_failure(FailureReason.TIMEOUT_B)
    s.retransmissions = timeouts
    return s


def total(*parts: IntervalStats) -> IntervalStats:
    out = IntervalStats()
    for part in parts:
        out.extend(part)
    return out


def test_unreported_is_the_counters_beyond_the_reports() -> None:
    s0, s1, s2 = second(10, 9, busy=1), second(12, 10, busy=1, timeouts=1), second(3, 3)
    gap = unreported(total(s0, s1, s2), total(s0, s2))
    assert gap is not None
    assert (gap.calls_attempted, gap.calls_successful, gap.calls_failed,
            gap.retransmissions) == (12, 10, 2, 1)
    assert gap.failed_by_reason == {"486": 1, "timeout": 1}
    # The lost report's latencies come back from the totals' histograms, bucket for bucket.
    lost = gap.histogram("setup_200")
    assert lost is not None
    assert lost.get_total_count() == 10
    assert gap.percentiles("setup_200") == s1.percentiles("setup_200")
    rebuilt = total(s0, s2)
    rebuilt.extend(gap)
    assert rebuilt == total(s0, s1, s2)
    nothing = unreported(total(s0, s1), total(s0, s1))
    assert nothing is not None
    assert nothing.is_empty()
    # Reports holding more than the totals: not a loss, nothing to move.
    assert unreported(total(s0), total(s0, s1)) is None


async def fake_agent(
    port: int, reports: list[tuple[int, IntervalStats]], done: IntervalStats,
    *, pause: float = 0.0,
) -> None:
    """A real DEALER speaking the protocol, sending only the reports it is given, in order,
    ``pause`` seconds apart (the controller reads whatever is queued in one go)."""
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, b"agent-x")
    sock.setsockopt(zmq.LINGER, 1000)
    sock.connect(f"tcp://127.0.0.1:{port}")
    try:
        async with asyncio.timeout(10):
            await sock.send(p.encode(p.Hello(agent_id="agent-x", version=p.PROTOCOL_VERSION,
                                             host=socket.gethostname(), pid=os.getpid(),
                                             cores=1)))
            while not isinstance(p.decode(await sock.recv()), p.Plan):
                pass
            for n, stats in reports:
                await sock.send(p.encode(p.StatsReport(agent_id="agent-x", second=n,
                                                       interval=stats.to_wire())))
                await asyncio.sleep(pause)
            await sock.send(p.encode(p.Done(agent_id="agent-x", totals=done.to_wire())))
    finally:
        sock.close()
        ctx.term()


def test_a_lost_report_is_reconciled_and_reported() -> None:
    s0, s1, s2 = second(10, 9, busy=1), second(12, 10, busy=1, timeouts=1), second(3, 3)

    async def scenario() -> RunResult:
        controller = Controller(make_plan(5060), expect_agents=1, start_delay=0.05,
                                join_timeout=10)
        port = controller.bind()
        task = asyncio.get_running_loop().create_task(controller.run())
        # Second 1's report is "lost": the Done totals still count it.
        await fake_agent(port, [(0, s0), (2, s2)], total(s0, s1, s2))
        async with asyncio.timeout(10):
            return await task

    started = time.monotonic()
    result = run(scenario())
    assert time.monotonic() - started < 10
    assert result.totals.calls_attempted == 25
    # The latencies of the lost second are in the run's histogram too, not only its counters.
    whole = total(s0, s1, s2)
    assert result.totals.histogram("setup_200").get_total_count() == 22  # type: ignore[union-attr]
    assert result.totals.percentiles("setup_200") == whole.percentiles("setup_200")
    moved = result.reconciled
    assert (moved.calls_attempted, moved.calls_successful, moved.calls_failed,
            moved.retransmissions) == (12, 10, 2, 1)
    assert moved.failed_by_reason == {"486": 1, "timeout": 1}
    assert result.agents["agent-x"].reconciled.calls_attempted == 12
    events = [e for e in result.events if e["event"] == "agent-reconciled"]
    assert len(events) == 1
    event = events[0]
    assert event["agent"] == "agent-x"
    assert event["second"] == 3  # after the last written second, not back in second 1
    assert (event["calls_attempted"], event["calls_successful"], event["calls_failed"]) == (
        12, 10, 2)
    assert event["failed_by_reason"] == {"486": 1, "timeout": 1}
    # The rows: second 1 is empty, the moved counters show up in second 3.
    assert [result.run.interval(n).calls_attempted for n in range(4)] == [10, 0, 3, 12]


def test_a_report_after_its_row_was_written_is_reported_late() -> None:
    s0, s1, s2 = second(10, 10), second(12, 11, busy=1), second(3, 3)

    async def scenario() -> RunResult:
        controller = Controller(make_plan(5060), expect_agents=1, start_delay=0.05,
                                join_timeout=10)
        port = controller.bind()
        task = asyncio.get_running_loop().create_task(controller.run())
        # Second 2 first: the agent has moved past second 1, whose row goes out empty before
        # second 1's report comes (the pause lets the controller write it).
        await fake_agent(port, [(0, s0), (2, s2), (1, s1)], total(s0, s1, s2), pause=0.3)
        async with asyncio.timeout(10):
            return await task

    result = run(scenario())
    assert result.totals.calls_attempted == 25
    assert result.reconciled.is_empty()  # nothing was lost, only late
    assert (result.late.calls_attempted, result.late.calls_failed) == (12, 1)
    events = [e for e in result.events if e["event"] == "agent-report-late"]
    assert [(e["agent"], e["second"], e["calls_attempted"]) for e in events] == [
        ("agent-x", 1, 12)]
