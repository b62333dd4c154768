"""``sipha run PLAN.toml [--out DIR] [--profile paper|default|both] [--hosts loopback|netns]``,
``sipha run --cleanup``.

Exit status: 0 the run completed and met every criterion of its plan's ``[expect]`` (for its
profile); 1 it completed but a criterion failed (each printed with what was measured and the
bound); 2 it could not run (a bad plan, a node that did not start or crashed); 130 interrupted.
With ``--profile both``, the worst of the two runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import msgspec

from sipha.common.config import ConfigError
from sipha.common.expect import EXIT_FAILED, EXIT_MET, EXIT_NOT_RUN, Verdict, describe
from sipha.common.http import parse_host_port
from sipha.report.render import render_comparison
from sipha.testbed.plan import PROFILES, Profile, apply_profile, load_plan, with_hosts
from sipha.testbed.progress import Progress
from sipha.testbed.runner import RunAborted, RunOutcome, run_plan

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", metavar="PLAN.toml", nargs="?", help="test plan (see plans/)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="results folder (default: the plan's `out`, else "
                        "results/<name>-<profile>); with --profile both, the parent of one "
                        "folder per profile")
    parser.add_argument("--profile", choices=[*PROFILES, "both"], default=None,
                        help="paper: the paper's setup (IPVS scheduling, no dialog-aware failover, "
                        "slow health checks, preempting failback); default: everything sipha "
                        "adds; both: one run each and a side-by-side comparison")
    parser.add_argument("--hosts", choices=["loopback", "netns"], default=None,
                        help="loopback: every node on its own address of this host's lo (the "
                        "default); netns: every node in a network namespace of its own on one "
                        "bridge, the pair in ip mode (needs root; overrides the plan's [hosts])")
    parser.add_argument("--web", metavar="HOST:PORT", default=None,
                        help="serve a live page of the run: calls, latency, nodes, roles, "
                        "faults, criteria, and controls (kill/stop/cont/start a node, drain or "
                        "disable a server, stop) behind a token printed once here")
    parser.add_argument("--cleanup", action="store_true",
                        help="remove the namespaces and state files that netns runs whose "
                        "runner was killed left behind, then exit")


_INTERRUPTED = 130


def _print_summary(outcome: RunOutcome) -> int:
    """Print the run's summary and verdicts; return its exit status."""
    summary = json.loads((outcome.folder / "summary.json").read_text())
    verdicts = msgspec.convert(summary["verdicts"], list[Verdict])
    keys = ("profile", "calls_attempted", "calls_successful", "calls_failed",
            "failed_by_reason", "calls_per_server", "takeover_ms", "longest_gap_ms")
    sys.stdout.write(f"\n{summary['name']} [{summary['profile']}]: {outcome.status}"
                     + (f" ({outcome.detail})" if outcome.detail else "") + "\n")
    for k in keys[1:]:
        sys.stdout.write(f"  {k:18} {summary[k]}\n")
    if outcome.leftover_pids:
        sys.stdout.write(f"  LEFTOVER PROCESS GROUPS: {outcome.leftover_pids}\n")
    for v in verdicts:
        sys.stdout.write(f"  {describe(v)}\n")
    sys.stdout.write(f"report: {outcome.report}\n")
    if outcome.status == "interrupted":
        return _INTERRUPTED
    if outcome.status != "complete":
        return EXIT_NOT_RUN
    failed = [v for v in verdicts if not v.passed]
    for v in failed:
        sys.stderr.write(f"sipha run: {summary['name']} [{summary['profile']}]: criterion "
                         f"{describe(v)}\n")
    return EXIT_FAILED if failed else EXIT_MET


def _cleanup() -> int:
    from sipha.testbed.netns import cleanup_leftovers, unavailable

    why = unavailable(euid=os.geteuid(), which=shutil.which)
    if why is not None:
        sys.stderr.write(f"sipha run --cleanup: {why}\n")
        return EXIT_NOT_RUN
    cleaned = cleanup_leftovers()
    sys.stdout.write(f"removed the leftovers of {len(cleaned)} run(s)"
                     + (f": {', '.join(cleaned)}" if cleaned else "") + "\n")
    return EXIT_MET


def main(args: argparse.Namespace) -> int:
    if args.cleanup:
        return _cleanup()
    if args.plan is None:
        sys.stderr.write("sipha run: give a PLAN.toml (or --cleanup)\n")
        return EXIT_NOT_RUN
    try:
        plan = with_hosts(load_plan(args.plan), args.hosts, source=args.plan)
        web = parse_host_port(args.web, what="--web") if args.web else None
    except (ConfigError, ValueError) as exc:
        sys.stderr.write(f"sipha run: {exc}\n")
        return 2
    chosen: list[Profile] = (
        ["paper", "default"] if args.profile == "both" else [args.profile or plan.profile]
    )
    outcomes: list[RunOutcome] = []
    codes: list[int] = []
    for profile in chosen:
        run = apply_profile(plan, profile)
        if args.profile == "both":
            base = Path(args.out or plan.out or "results")
            out = base / f"{plan.name}-{profile}"
        else:
            out = Path(args.out or plan.out or f"results/{plan.name}-{profile}")
        try:
            outcome = run_plan(run, out, progress=Progress(), web=web)
        except RunAborted as exc:
            sys.stderr.write(f"sipha run: {exc}\n")
            return EXIT_NOT_RUN
        codes.append(_print_summary(outcome))
        outcomes.append(outcome)
        if outcome.status == "interrupted":
            break
    if len(outcomes) > 1:
        target = outcomes[0].folder.parent / f"{plan.name}-compare.html"
        path = render_comparison([o.folder for o in outcomes], target)
        sys.stdout.write(f"comparison: {path}\n")
    # Interrupted, then could not run, then a failed criterion: the worst decides.
    order = (_INTERRUPTED, EXIT_NOT_RUN, EXIT_FAILED, EXIT_MET)
    return next(c for c in order if c in codes)
