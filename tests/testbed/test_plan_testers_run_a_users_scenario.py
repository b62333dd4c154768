"""A plan's testers run a user's SIPp XML scenario with an injection file: the sipha tester
through its controller (which ships the files to the agent), the SIPp tester with -sf/-inf;
both testers' calls land in the run's per-second records, each under its source, and add up
in the summary.  A scenario that cannot run stops the plan when it is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sipha.common.config import ConfigError
from sipha.loadtest.scenario.builtin import builtin_text
from sipha.testbed.addresses import AddressBlock
from sipha.testbed.commands import sipp_command
from sipha.testbed.plan import load_plan
from sipha.testbed.progress import Progress
from sipha.testbed.runner import run_plan

PLAN = """
name = "scenario-testers"
drain = 3
[servers]
count = 1
[dispatchers]
count = 1
[[testers]]
name = "t1"
scenario = "uac_users.xml"
inf = ["users.csv"]
[[testers]]
name = "t2"
engine = "sipp"
scenario = "uac_users.xml"
inf = ["users.csv"]
[[phases]]
duration = 3
rate = 5
hold = 0.2
"""


def _write(folder: Path) -> Path:
    # SIPp's own uac, calling from the injection file's users.
    xml = builtin_text("uac").decode().replace("sipp <sip:sipp@", "<sip:[field0]@")
    (folder / "uac_users.xml").write_text(xml.replace("sip:sipp@", "sip:[field0]@"))
    (folder / "users.csv").write_text("SEQUENTIAL\n" + "".join(f"u{n};x\n" for n in range(40)))
    plan = folder / "plan.toml"
    plan.write_text(PLAN)
    return plan


@pytest.mark.timeout(60)
def test_sipha_and_sipp_testers_run_the_same_scenario(tmp_path: Path) -> None:
    plan = load_plan(_write(tmp_path))
    # Relative paths are the plan file's: every process names the same files.
    assert plan.testers[1].scenario == str(tmp_path / "uac_users.xml")
    out = tmp_path / "run"
    outcome = run_plan(plan, out, progress=Progress(every=100))
    assert outcome.status == "complete", outcome.detail
    assert outcome.leftover_pids == []
    records = [json.loads(line) for line in (out / "calls.jsonl").read_text().splitlines()]
    by_source: dict[str, int] = {}
    for r in records:
        by_source[r["source"]] = by_source.get(r["source"], 0) + r["successful"]
        assert r["failed"] == 0, r
    # 3 s at 5 calls/s each (wide margins for a loaded host: SIPp's -m bounds its 15).
    assert set(by_source) == {"sipha", "sipp:t2"}
    assert 10 <= by_source["sipha"] <= 16
    assert 10 <= by_source["sipp:t2"] <= 15
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calls_successful"] == sum(by_source.values())
    assert summary["calls_failed"] == 0


def test_sipp_gets_the_same_files(tmp_path: Path) -> None:
    plan = load_plan(_write(tmp_path))
    argv = sipp_command(plan, plan.testers[1], 2, plan.phases[0], AddressBlock(9, 9),
                        tmp_path / "stat.csv").argv
    assert argv[1:5] == ["-sf", str(tmp_path / "uac_users.xml"), "-inf",
                         str(tmp_path / "users.csv")]


def test_a_bad_scenario_stops_the_plan(tmp_path: Path) -> None:
    plan = _write(tmp_path)
    (tmp_path / "uac_users.xml").write_text("<scenario>\n  <send>\n</scenario>\n")
    with pytest.raises(ConfigError, match=r"testers\[0\]\.scenario.*uac_users\.xml:3"):
        load_plan(plan)
    (tmp_path / "uac_users.xml").write_text(builtin_text("uas").decode())
    with pytest.raises(ConfigError, match="starts with <recv>"):
        load_plan(plan)
