"""Calls over TCP to SIPp, and the command line: help lists every option, a run writes CSV."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sipha.common.loop import run
from sipha.loadtest.api import run_local
from sipha.loadtest.stats_output import read_sipp_stat_csv
from tests.loadtest.helpers import make_plan
from tests.sipp import uas

OPTIONS = ("--rate", "--ramp", "--max-rate", "--arrival", "--duration", "--max-calls",
           "--max-concurrent", "--hold", "--hold-dist", "--transport", "--users", "--password",
           "--t1", "--ring-timeout", "--answer", "--busy", "--no-answer", "--ring", "--csv",
           "--jsonl", "--results", "--agents", "--seed", "--drain-timeout")


def test_calls_over_tcp_to_sipp_succeed() -> None:
    with uas(transport="t1") as (port, _proc):
        time.sleep(0.3)
        plan = make_plan(port, rate=100, max_calls=200, duration=None, transport="tcp")
        totals = run(run_local(plan)).totals
    assert (totals.calls_successful, totals.calls_failed, totals.retransmissions) == (200, 0, 0)


def test_load_help_documents_every_option() -> None:
    out = subprocess.run([sys.executable, "-m", "sipha", "load", "--help"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    for option in OPTIONS:
        assert option in out, option
    for scenario in ("call", "register", "options", "register+call", "uas", "controller",
                     "agent"):
        assert scenario in out


def test_cli_run_writes_the_csv_as_sipp_would(tmp_path: Path) -> None:
    with uas() as (port, _proc):
        time.sleep(0.3)
        proc = subprocess.run(
            [sys.executable, "-m", "sipha", "load", "call", f"127.0.0.1:{port}", "--rate", "50",
             "--duration", "2s", "--csv", str(tmp_path / "out.csv"), "--quiet"],
            capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 0, proc.stderr
    assert "attempted 100 successful 100 failed 0" in proc.stdout
    rows = read_sipp_stat_csv(tmp_path / "out.csv")
    assert sum(r.stats.calls_successful for r in rows) == 100
