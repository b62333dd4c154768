"""The other built-ins against real SIPp: sipha's regexp against ``sipp -sn uas``; sipha's
branchc against ``sipp -sn branchs`` and SIPp's branchc against sipha's branchs, run at the
same time.  Every call successful, per-step counts equal on both sides."""

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


def test_regexp_against_sipp_uas(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    sipp = start_sipp(["-sn", "uas", "-i", "127.0.0.1", "-p", str(port)], tmp_path)
    try:
        scenario = load_scenario_text(builtin_text("regexp"), file="regexp")

        async def go() -> ScenarioEngine:
            async with asyncio.timeout(60):
                return await run_scenario(scenario, RunConfig(remote_port=port),
                                          RunBounds(rate=20, max_calls=10), seed=4)

        engine = asyncio.run(go())
        theirs = counts_when(tmp_path, "4_BYE_Recv", 10, 10)
    finally:
        stop_sipp(sipp)
    s = engine.stats
    assert (s.created, s.successful, s.failed_calls) == (10, 10, 0), s.failed
    ours = s.steps
    for step, column in [(0, "0_INVITE_Recv"), (2, "1_180_Sent"), (4, "2_200_Sent"),
                         (5, "3_ACK_Recv"), (7, "4_BYE_Recv"), (8, "5_200_Sent")]:
        assert ours[step].messages == theirs[column] == 10, (step, column)
    assert s.rtd["1"].low >= 0.9  # start_rtd at the 200, stop at the BYE's 200: the 1 s pause


def test_branch_client_and_server_againststart_sipp(tmp_path: Path) -> None:
    calls = 3  # call 2 takes the 200 branch (From ua2), calls 1 and 3 the 403 branch
    sipp_server_port, our_server_port = free_port("127.0.0.1"), free_port("127.0.0.1")
    sipp_server = start_sipp(["-sn", "branchs", "-i", "127.0.0.1", "-p", str(sipp_server_port)],
                        tmp_path / "branchs")
    branchc = load_scenario_text(builtin_text("branchc"), file="branchc")
    branchs = load_scenario_text(builtin_text("branchs"), file="branchs")

    async def go() -> tuple[ScenarioEngine, ScenarioEngine, int]:
        async with asyncio.timeout(60):
            server = asyncio.create_task(run_scenario(
                branchs, RunConfig(local_port=our_server_port),
                RunBounds(max_calls=calls, drain_timeout=20), seed=5))
            client = asyncio.create_task(run_scenario(
                branchc, RunConfig(remote_port=sipp_server_port),
                RunBounds(rate=10, max_calls=calls, drain_timeout=20), seed=6))
            sipp_client = start_sipp(["-sn", "branchc", f"127.0.0.1:{our_server_port}",
                                 "-i", "127.0.0.1", "-p", str(free_port("127.0.0.1")),
                                 "-r", "10", "-m", str(calls)], tmp_path / "branchc")
            try:
                code = await asyncio.to_thread(sipp_client.wait, 50)
                return await client, await server, code
            finally:
                stop_sipp(sipp_client)

    try:
        ours_c, ours_s, code = asyncio.run(go())
        theirs_s = counts_when(tmp_path / "branchs", "9_200_Sent", calls, 10)
    finally:
        stop_sipp(sipp_server)
    theirs_c = sipp_counts(tmp_path / "branchc")
    assert code == 0
    for e in (ours_c, ours_s):
        assert (e.stats.created, e.stats.successful, e.stats.failed_calls) == (calls, calls, 0)
    # branchc: REGISTER 200 200 INVITE 100 180 183 403 200 ACK pause BYE 200 pause
    # branchs: REGISTER 200 INVITE 180 403 100 200 ACK BYE 200 timewait
    c_to_s = [(0, "0_REGISTER_Recv"), (1, "1_200_Sent"), (3, "2_INVITE_Recv"), (5, "3_180_Sent"),
              (7, "4_403_Sent"), (4, "5_100_Sent"), (8, "6_200_Sent"), (9, "7_ACK_Recv"),
              (11, "8_BYE_Recv"), (12, "9_200_Sent")]
    for step, column in c_to_s:
        assert ours_c.stats.steps[step].messages == theirs_s[column], (step, column)
    s_to_c = [(0, "0_REGISTER_Sent"), (1, "1_200_Recv"), (2, "3_INVITE_Sent"), (3, "5_180_Recv"),
              (4, "7_403_Recv"), (5, "4_100_Recv"), (6, "8_200_Recv"), (7, "9_ACK_Sent"),
              (8, "11_BYE_Sent"), (9, "12_200_Recv")]
    for step, column in s_to_c:
        assert ours_s.stats.steps[step].messages == theirs_c[column], (step, column)
    assert theirs_s["7_ACK_Recv"] == theirs_c["9_ACK_Sent"] == 1  # only call 2 is answered
    assert theirs_s["4_403_Sent"] == 2
