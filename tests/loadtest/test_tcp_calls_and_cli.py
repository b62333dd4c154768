"""Calls over TCP to SIPp, and the command line: help lists every option, a run writes CSV."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from sipha.cli import build_parser
from sipha.common.loop import run
from sipha.loadtest.api import run_local
from sipha.loadtest.stats_output import read_sipp_stat_csv
from tests.loadtest.helpers import make_plan
from tests.sipp import uas


def test_calls_over_tcp_to_sipp_succeed() -> None:
    with uas(transport="t1") as (port, _proc):
        time.sleep(0.3)
        plan = make_plan(port, rate=100, max_calls=200, duration=None, transport="tcp")
        totals = run(run_local(plan)).totals
    assert (totals.calls_successful, totals.calls_failed, totals.retransmissions) == (200, 0, 0)


def _load_subcommands() -> dict[str, argparse.ArgumentParser]:
    load = _subparsers(build_parser("load"))["load"]
    return _subparsers(load)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return dict(actions[0].choices)


def _squeeze(text: str) -> str:
    # argparse re-wraps help text (even at hyphens): compare without any whitespace.
    return "".join(text.split())


def test_load_help_documents_every_option() -> None:
    """Every argument argparse defines for any ``sipha load`` sub-command has help text, which
    both ``sipha load --help`` and the sub-command's own --help show with its option strings.
    Walking the parser, not a hand list, so a new option without help fails here."""
    top = subprocess.run([sys.executable, "-m", "sipha", "load", "--help"], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    subcommands = _load_subcommands()
    assert set(subcommands) == {"call", "register", "options", "register+call", "uas",
                                "controller", "agent", "keys", "scenario"}
    checked = 0
    for name, parser in subcommands.items():
        assert re.search(rf"^\s+{re.escape(name)}\b", top, re.M), name
        own = parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            what = f"sipha load {name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{what}: no help"
            assert action.help is not argparse.SUPPRESS, f"{what}: help suppressed"
            for text in (top, own):
                assert _squeeze(action.help) in _squeeze(text), f"{what}: help not shown"
                for option in action.option_strings:
                    assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), what
            checked += 1
    # The scenario sub-commands share ~40 options; the controller, uas and agent add theirs.
    assert checked > 150


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
