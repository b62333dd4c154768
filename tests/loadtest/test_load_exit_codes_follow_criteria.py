"""`sipha load` exits 0 when its criteria are met, 1 when one fails (named, with measurement
and bound), 2 when it cannot run (a malformed criterion); real calls to a SIPp UAS."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from sipha.cli import build_parser
from sipha.common.expect import Criteria
from sipha.loadtest.verdict import DEFAULT, criteria_from_args
from tests.sipp import uas


def _load(port: int, *criteria: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sipha", "load", "call", f"127.0.0.1:{port}", "--rate", "20",
         "--duration", "1s", "--quiet", *criteria],
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.timeout(120)
def test_met_criteria_exit_0_and_an_unmeetable_one_exits_1() -> None:
    with uas() as (port, _proc):
        time.sleep(0.3)
        met = _load(port, "--max-failed-calls", "0", "--min-success-ratio", "1",
                    "--max-unfinished-calls", "0", "--max-longest-gap-ms", "5000")
        failed = _load(port, "--min-success-ratio", "0.5", "--max-setup-p99-ms", "0")
    assert met.returncode == 0, met.stdout + met.stderr
    assert "attempted 20 successful 20 failed 0" in met.stdout
    assert "min_success_ratio: measured 1, bound >= 1: met" in met.stdout
    assert "max_longest_gap_ms: measured " in met.stdout
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "min_success_ratio: measured 1, bound >= 0.5: met" in failed.stdout
    line = next(x for x in failed.stderr.splitlines() if x.startswith("max_setup_p99_ms"))
    assert line.startswith("max_setup_p99_ms: measured ")
    assert line.endswith("bound <= 0: FAILED")


@pytest.mark.parametrize(("flag", "value", "fix"), [
    ("--min-success-ratio", "1.5", "between 0 and 1"),
    ("--max-failed-calls", "-1", "whole number >= 0"),
    ("--max-setup-p99-ms", "soon", "milliseconds >= 0"),
])
def test_a_malformed_criterion_exits_2_before_running(flag: str, value: str, fix: str) -> None:
    # Port 9 (discard) on loopback: nothing would answer, but nothing is sent either.
    proc = subprocess.run(
        [sys.executable, "-m", "sipha", "load", "call", "127.0.0.1:9", flag, value],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 2
    assert flag in proc.stderr
    assert fix in proc.stderr


def test_no_flag_holds_a_run_to_no_failed_call() -> None:
    parser = build_parser("load")
    args = parser.parse_args(["load", "call", "127.0.0.1:9"])
    assert criteria_from_args(args) == DEFAULT == Criteria(max_failed_calls=0)
    args = parser.parse_args(["load", "controller", "call", "127.0.0.1:9", "--expect", "2",
                              "--max-unfinished-calls", "3"])
    assert args.expect == 2  # the controller's agent count, not a criterion
    assert criteria_from_args(args) == Criteria(max_unfinished_calls=3)
