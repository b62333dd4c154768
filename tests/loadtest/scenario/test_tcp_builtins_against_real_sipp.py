"""Over TCP (SIPp's ``-t t1``): sipha's uac against ``sipp -sn uas``, SIPp's uac against
sipha's uas; every call successful, per-step counts equal, no retransmission on a stream."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sipha.common.process import free_port
from sipha.loadtest.scenario.builtin import builtin_text
from sipha.loadtest.scenario.context import RunConfig
from sipha.loadtest.scenario.engine import ScenarioEngine
from sipha.loadtest.scenario.loader import load_scenario_text
from sipha.loadtest.scenario.runner import RunBounds, run_scenario
from tests.loadtest.scenario.helpers import counts_when, sipp_counts, start_sipp, stop_sipp

CALLS = 20


def test_sipha_uac_over_tcp_against_sipp_uas(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    sipp = start_sipp(["-sn", "uas", "-t", "t1", "-i", "127.0.0.1", "-p", str(port)], tmp_path)
    try:
        uac = load_scenario_text(builtin_text("uac"), file="uac")

        async def go() -> ScenarioEngine:
            await asyncio.sleep(0.5)  # SIPp listening
            async with asyncio.timeout(60):
                return await run_scenario(uac, RunConfig(remote_port=port, transport="TCP"),
                                          RunBounds(rate=50, max_calls=CALLS), seed=8)

        engine = asyncio.run(go())
        theirs = counts_when(tmp_path, "5_200_Sent", CALLS, 10)
    finally:
        stop_sipp(sipp)
    s = engine.stats
    assert (s.created, s.successful, s.failed_calls) == (CALLS, CALLS, 0), s.failed
    for step, column in [(0, "0_INVITE_Recv"), (2, "1_180_Sent"), (4, "2_200_Sent"),
                         (5, "3_ACK_Recv"), (7, "4_BYE_Recv"), (8, "5_200_Sent")]:
        assert s.steps[step].messages == theirs[column] == CALLS, (step, column)
    assert s.retransmissions == 0


def test_sipp_uac_over_tcp_against_sipha_uas(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    uas = load_scenario_text(builtin_text("uas"), file="uas")

    async def go() -> tuple[ScenarioEngine, int]:
        server = asyncio.create_task(run_scenario(
            uas, RunConfig(local_port=port, transport="TCP"),
            RunBounds(max_calls=CALLS, drain_timeout=20), seed=9))
        await asyncio.sleep(0.3)
        sipp = start_sipp(["-sn", "uac", "-t", "t1", f"127.0.0.1:{port}", "-i", "127.0.0.1",
                      "-p", str(free_port("127.0.0.1")), "-r", "50", "-m", str(CALLS)],
                     tmp_path)
        try:
            async with asyncio.timeout(60):
                code = await asyncio.to_thread(sipp.wait, 50)
                return await server, code
        finally:
            stop_sipp(sipp)
            server.cancel()

    engine, code = asyncio.run(go())
    assert code == 0
    s = engine.stats
    assert (s.created, s.successful, s.failed_calls) == (CALLS, CALLS, 0), s.failed
    theirs = sipp_counts(tmp_path)
    for step, column in [(0, "0_INVITE_Sent"), (1, "2_180_Recv"), (2, "4_200_Recv"),
                         (3, "5_ACK_Sent"), (4, "7_BYE_Sent"), (5, "8_200_Recv")]:
        assert s.steps[step].messages == theirs[column] == CALLS, (step, column)
