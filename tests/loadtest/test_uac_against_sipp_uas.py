"""sipha's UAC against a real SIPp ``uas``: 2,000 calls, all successful by both sides' counters;
and a ramp 10 -> 50 calls/s (+10 every 2 s) whose measured attempts follow the plan."""

from __future__ import annotations

import time
from pathlib import Path

from sipha.common.loop import run
from sipha.loadtest.api import run_local
from sipha.loadtest.protocol import Ramp
from sipha.loadtest.stats_output import read_sipp_stat_csv
from tests.loadtest.helpers import make_plan, sipp_last_row
from tests.sipp import uas


def test_2000_calls_to_sipp_uas_all_succeed_on_both_sides(tmp_path: Path) -> None:
    stat = tmp_path / "uas.csv"
    with uas(extra=("-trace_stat", "-stf", str(stat), "-fd", "1")) as (port, _proc):
        time.sleep(0.3)
        plan = make_plan(port, rate=500, duration=None, max_calls=2000)
        result = run(run_local(plan, results_dir=tmp_path / "out"))
        # SIPp's uas ends each call 4 s after the BYE (its time-wait) and writes its counters
        # once a second: wait for the last calls to be counted.
        deadline = time.monotonic() + 15
        while True:
            sipp = sipp_last_row(stat)
            ended = int(sipp["SuccessfulCall(C)"]) + int(sipp["FailedCall(C)"])
            if ended >= 2000 and int(sipp["CurrentCall"]) == 0:
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
    totals = result.totals
    assert (totals.calls_attempted, totals.calls_successful, totals.calls_failed) == (2000, 2000, 0)
    failures = {k: v for k, v in sipp.items() if k.startswith("Failed") and v not in ("0", "")}
    assert int(sipp["SuccessfulCall(C)"]) == 2000, failures
    assert int(sipp["FailedCall(C)"]) == 0, failures
    # The CSV is SIPp-shaped: SIPp's own reader takes it.
    rows = read_sipp_stat_csv(tmp_path / "out" / "stats.csv")
    assert sum(r.stats.calls_successful for r in rows) == 2000


def test_ramp_attempts_follow_the_plan_within_5_percent(tmp_path: Path) -> None:
    with uas() as (port, _proc):
        time.sleep(0.3)
        plan = make_plan(port, rate=10, duration=10.0,
                         ramp=Ramp(start=10, step=10, interval=2, max=50))
        result = run(run_local(plan))
    attempts = {s: iv.calls_attempted for s, iv in result.run.series()}
    planned = [10, 10, 20, 20, 30, 30, 40, 40, 50, 50]
    for second, want in enumerate(planned):
        assert abs(attempts.get(second, 0) - want) <= 0.05 * want, (second, attempts)
    assert result.totals.calls_successful == sum(planned)
