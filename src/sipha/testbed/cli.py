"""``sipha run PLAN.toml [--out DIR] [--profile paper|default|both]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sipha.common.config import ConfigError
from sipha.report.render import render_comparison
from sipha.testbed.plan import PROFILES, Profile, apply_profile, load_plan
from sipha.testbed.progress import Progress
from sipha.testbed.runner import RunAborted, RunOutcome, run_plan

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", metavar="PLAN.toml", help="test plan (see plans/)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="results folder (default: the plan's `out`, else "
                        "results/<name>-<profile>); with --profile both, the parent of one "
                        "folder per profile")
    parser.add_argument("--profile", choices=[*PROFILES, "both"], default=None,
                        help="paper: the paper's setup (IPVS scheduling, no dialog-aware failover, "
                        "slow health checks, preempting failback); default: everything sipha "
                        "adds; both: one run each and a side-by-side comparison")


def _print_summary(outcome: RunOutcome) -> None:
    summary = json.loads((outcome.folder / "summary.json").read_text())
    keys = ("profile", "calls_attempted", "calls_successful", "calls_failed",
            "failed_by_reason", "calls_per_server", "takeover_ms", "longest_gap_ms")
    sys.stdout.write(f"\n{summary['name']} [{summary['profile']}]: {outcome.status}"
                     + (f" ({outcome.detail})" if outcome.detail else "") + "\n")
    for k in keys[1:]:
        sys.stdout.write(f"  {k:18} {summary[k]}\n")
    if outcome.leftover_pids:
        sys.stdout.write(f"  LEFTOVER PROCESS GROUPS: {outcome.leftover_pids}\n")
    sys.stdout.write(f"report: {outcome.report}\n")


def main(args: argparse.Namespace) -> int:
    try:
        plan = load_plan(args.plan)
    except ConfigError as exc:
        sys.stderr.write(f"sipha run: {exc}\n")
        return 2
    chosen: list[Profile] = (
        ["paper", "default"] if args.profile == "both" else [args.profile or plan.profile]
    )
    outcomes: list[RunOutcome] = []
    for profile in chosen:
        run = apply_profile(plan, profile)
        if args.profile == "both":
            base = Path(args.out or plan.out or "results")
            out = base / f"{plan.name}-{profile}"
        else:
            out = Path(args.out or plan.out or f"results/{plan.name}-{profile}")
        try:
            outcome = run_plan(run, out, progress=Progress())
        except RunAborted as exc:
            sys.stderr.write(f"sipha run: {exc}\n")
            return 1
        _print_summary(outcome)
        outcomes.append(outcome)
        if outcome.status == "interrupted":
            break
    if len(outcomes) > 1:
        target = outcomes[0].folder.parent / f"{plan.name}-compare.html"
        path = render_comparison([o.folder for o in outcomes], target)
        sys.stdout.write(f"comparison: {path}\n")
    worst = {"complete": 0, "interrupted": 130, "aborted": 1}
    return max(worst.get(o.status, 1) for o in outcomes)
