"""sipha's built-in uac against SIPp's ``-sn uas``, and SIPp's ``-sn uac`` against sipha's
built-in uas: 50 calls at 50 calls/s, every call successful, and every step's message count
equal on both sides (SIPp's ``-trace_counts`` file is the referee)."""

from __future__ import annotations

import asyncio
import csv
import time
from pathlib import Path

from sipha.common.process import free_port
from sipha.loadtest.scenario.builtin import builtin_text
from sipha.loadtest.scenario.context import RunConfig
from sipha.loadtest.scenario.engine import ScenarioEngine
from sipha.loadtest.scenario.loader import load_scenario_text
from sipha.loadtest.scenario.runner import RunBounds, run_scenario
from sipha.loadtest.scenario.stat_files import TraceCountsWriter, TraceStatWriter
from tests.loadtest.scenario.helpers import sipp_counts, start_sipp, stop_sipp

CALLS = 50


def _run(name: str, config: RunConfig, bounds: RunBounds) -> ScenarioEngine:
    scenario = load_scenario_text(builtin_text(name), file=name)

    async def go() -> ScenarioEngine:
        async with asyncio.timeout(60):
            return await run_scenario(scenario, config, bounds, seed=1)

    return asyncio.run(go())


def _steps(engine: ScenarioEngine) -> list[tuple[int, int, int, int]]:
    return [(s.messages, s.retrans, s.timeouts, s.unexpected) for s in engine.stats.steps]


def test_sipha_uac_against_sipp_uas(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    sipp = start_sipp(["-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-m", str(CALLS)],
                      tmp_path)
    try:
        engine = _run("uac", RunConfig(remote_port=port),
                      RunBounds(rate=50, max_calls=CALLS, drain_timeout=20))
        sipp.wait(timeout=30)  # SIPp's uas exits after -m calls (4 s time-wait each)
    finally:
        stop_sipp(sipp)
    s = engine.stats
    assert (s.created, s.successful, s.failed_calls) == (CALLS, CALLS, 0), s.failed
    theirs = sipp_counts(tmp_path)
    ours = engine.stats.steps
    # uac steps: INVITE 100 180 183 200 ACK pause BYE 200; SIPp's uas: INVITE 180 200 ACK BYE 200
    pairs = [(0, "0_INVITE_Recv"), (2, "1_180_Sent"), (4, "2_200_Sent"), (5, "3_ACK_Recv"),
             (7, "4_BYE_Recv"), (8, "5_200_Sent")]
    for step, column in pairs:
        assert ours[step].messages == theirs[column] == CALLS, (step, column)
    assert ours[1].messages == ours[3].messages == 0  # SIPp's uas sends no 100 nor 183
    assert theirs["6_Pause_Sessions"] == CALLS
    assert all(ours[i].unexpected == 0 for i in range(len(ours)))
    assert sum(v for k, v in theirs.items() if k.endswith("_Unexp")) == 0
    assert s.rtd["1"].count == CALLS


def test_sipp_uac_against_sipha_uas(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    scenario = load_scenario_text(builtin_text("uas"), file="uas")
    config = RunConfig(local_port=port)

    async def go() -> tuple[ScenarioEngine, int]:
        server = asyncio.create_task(run_scenario(
            scenario, config, RunBounds(max_calls=CALLS, drain_timeout=20), seed=2))
        await asyncio.sleep(0.2)
        sipp = start_sipp(["-sn", "uac", f"127.0.0.1:{port}", "-i", "127.0.0.1",
                      "-p", str(free_port("127.0.0.1")), "-r", "50", "-m", str(CALLS)], tmp_path)
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
    ours = engine.stats.steps
    # uas steps: INVITE 180 200 ACK BYE 200 timewait; SIPp's uac as above
    pairs = [(0, "0_INVITE_Sent"), (1, "2_180_Recv"), (2, "4_200_Recv"), (3, "5_ACK_Sent"),
             (4, "7_BYE_Sent"), (5, "8_200_Recv")]
    for step, column in pairs:
        assert ours[step].messages == theirs[column] == CALLS, (step, column)
    assert ours[6].messages == CALLS  # every call went through the time-wait
    assert theirs["1_100_Recv"] == theirs["3_183_Recv"] == 0
    assert sum(v for k, v in theirs.items() if k.endswith("_Unexp")) == 0
    assert all(st.unexpected == 0 for st in ours)


def test_statistics_files_have_sipps_columns(tmp_path: Path) -> None:
    """sipha's -trace_stat and -trace_counts files for the uac have the header lines SIPp
    writes for it, and a reader of SIPp's file by column reads sipha's."""
    port = free_port("127.0.0.1")
    uac = load_scenario_text(builtin_text("uac"), file="uac")
    sipp = start_sipp(["-sn", "uas", "-i", "127.0.0.1", "-p", str(port)], tmp_path / "uas")
    ours_stat, ours_counts = tmp_path / "stat.csv", tmp_path / "counts.csv"
    try:
        with ours_stat.open("w") as fs, ours_counts.open("w") as fc:
            writers = [TraceStatWriter(fs, uac, start_wall=time.time(), target_rate=20),
                       TraceCountsWriter(fc, uac, start_wall=time.time())]

            def on_period(engine: ScenarioEngine, wall: float) -> None:
                for w in writers:
                    w.write(engine.stats, wall)

            async def go() -> ScenarioEngine:
                async with asyncio.timeout(60):
                    return await run_scenario(uac, RunConfig(remote_port=port),
                                              RunBounds(rate=20, max_calls=5), seed=3,
                                              on_period=on_period)

            engine = asyncio.run(go())
        sipp_dir = tmp_path / "sipp"
        client = start_sipp(["-sn", "uac", f"127.0.0.1:{port}", "-i", "127.0.0.1", "-p",
                        str(free_port("127.0.0.1")), "-r", "20", "-m", "5"], sipp_dir)
        try:
            assert client.wait(timeout=30) == 0
        finally:
            stop_sipp(client)
    finally:
        stop_sipp(sipp)
    assert engine.stats.successful == 5
    theirs_stat = next(sipp_dir.glob("uac_*_.csv")).read_text().splitlines()[0]
    theirs_counts = next(sipp_dir.glob("uac_*_counts.csv")).read_text().splitlines()[0]
    assert ours_stat.read_text().splitlines()[0] == theirs_stat
    assert ours_counts.read_text().splitlines()[0] == theirs_counts
    with ours_stat.open(newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert rows[-1]["SuccessfulCall(C)"] == "5"
    assert rows[-1]["OutgoingCall(C)"] == "5"
    assert rows[-1]["FailedCall(C)"] == "0"
    assert sipp_counts(tmp_path)["8_200_Recv"] == 5  # our counts file, read as SIPp's
