"""Each failure lands under its reason, over real sockets: a busy callee (486), a silent target
(Timer B), a callee killed mid-call (its BYE fails)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from sipha.common.loop import run
from sipha.loadtest.api import run_local
from sipha.loadtest.controller import RunResult
from sipha.loadtest.options import AnswerMix
from sipha.loadtest.runner import AgentRunner
from tests.loadtest.helpers import make_plan, silent_peer
from tests.sipp import uas


def test_busy_callee_yields_failed_486() -> None:
    async def scenario() -> RunResult:
        callee = AgentRunner(
            make_plan(5060, scenario="uas", duration=None, mix=AnswerMix(answer=0, busy=1)),
            make_plan(5060, scenario="uas", mix=AnswerMix(answer=0, busy=1)).options,
        )
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(callee.run())
            await callee.ready.wait()
            result = await run_local(make_plan(callee.local_port, rate=20, max_calls=10,
                                               duration=None))
            callee.stop()
            await task
        return result

    totals = run(scenario()).totals
    assert totals.calls_attempted == 10
    assert totals.failed_by_reason == {"486": 10}
    assert totals.calls_successful == 0


def test_silent_target_yields_failed_timeout_after_timer_b() -> None:
    with silent_peer() as port:
        started = time.monotonic()
        result = run(run_local(make_plan(port, rate=20, max_calls=3, duration=None, t1=0.02)))
        elapsed = time.monotonic() - started
    totals = result.totals
    assert totals.failed_by_reason == {"timeout": 3}
    # Timer B = 64 * T1 = 1.28 s; Timer A retransmitted each INVITE 6 times meanwhile.
    assert 1.28 <= elapsed < 5
    assert totals.retransmissions == 3 * 6


def test_callee_killed_mid_call_yields_failed_bye() -> None:
    with uas() as (port, proc):
        time.sleep(0.3)

        async def scenario() -> RunResult:
            loop = asyncio.get_running_loop()
            # The calls are answered at once and held 1.5 s; SIPp dies after 0.7 s.
            loop.call_later(0.7, os.kill, proc.pid, signal.SIGKILL)
            plan = make_plan(port, rate=20, max_calls=5, duration=None, hold=1.5, t1=0.05)
            return await run_local(plan)

        totals = run(scenario()).totals
    assert totals.calls_attempted == 5
    assert totals.failed_by_reason == {"bye-failed": 5}
    setup = totals.histogram("setup_200")
    assert setup is None or setup.get_total_count() == 0  # failures carry no setup latency
