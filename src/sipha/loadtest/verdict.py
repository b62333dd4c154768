"""``sipha load``'s criteria: one flag per criterion, measured from the run, judged purely.

The flags are the plan's ``[expect]`` keys with dashes (``--max-failed-calls 0``,
``--min-success-ratio 0.99``, ``--max-setup-p99-ms 200``, ``--max-longest-gap-ms 500``,
``--max-unfinished-calls 0``); ``max_takeover_ms`` has no flag, as a load run alone sees no
dispatcher switch (``sipha run`` measures takeovers from the pair's roles).  With no flag, a
run is held to ``--max-failed-calls 0``: the load tester's verdict before criteria existed.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from sipha.common.expect import Criteria, Measured, Verdict, evaluate, longest_gap_slots

if TYPE_CHECKING:  # the CLI imports this module to build its parser: keep ZeroMQ out of it
    from sipha.loadtest.controller import RunResult

__all__ = ["DEFAULT", "add_arguments", "criteria_from_args", "judge", "measure"]

DEFAULT = Criteria(max_failed_calls=0)
"""The criteria of a run given no criterion flag."""

_FLAGS = ("max_failed_calls", "min_success_ratio", "max_setup_p99_ms", "max_longest_gap_ms",
          "max_unfinished_calls")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: write a whole number >= 0, e.g. 0")
    return value


def _ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: write milliseconds >= 0, e.g. 200")
    return value


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: write a ratio between 0 and 1, e.g. 0.99")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "criteria (exit 0: all met; 1: one failed; 2: the run could not run; "
        "none given: --max-failed-calls 0)")
    g.add_argument("--max-failed-calls", type=_count, metavar="N",
                   help="at most N calls failed")
    g.add_argument("--min-success-ratio", type=_ratio, metavar="R",
                   help="at least this share (0..1) of the calls attempted succeeded")
    g.add_argument("--max-setup-p99-ms", type=_ms, metavar="MS",
                   help="whole-run INVITE to 200 p99 at most MS milliseconds")
    g.add_argument("--max-longest-gap-ms", type=_ms, metavar="MS",
                   help="no stretch longer than MS milliseconds without a call answered")
    g.add_argument("--max-unfinished-calls", type=_count, metavar="N",
                   help="at most N calls neither succeeded nor failed when the run ended")


def criteria_from_args(args: argparse.Namespace) -> Criteria:
    """The criteria the flags set, or :data:`DEFAULT` when none is given."""
    given = {name: getattr(args, name, None) for name in _FLAGS}
    given = {k: v for k, v in given.items() if v is not None}
    return Criteria(**given) if given else DEFAULT


def measure(result: RunResult) -> Measured:
    """A finished run's measurements (counters and histograms merged exactly over agents)."""
    from sipha.loadtest.stats import SLOTS_PER_SECOND

    totals = result.totals
    answered = last_attempt = 0
    for second, stats in result.run.series():
        answered |= stats.answered_slots << (max(second, 0) * SLOTS_PER_SECOND)
        if stats.calls_attempted:
            last_attempt = second * SLOTS_PER_SECOND
    attempted, ok = totals.calls_attempted, totals.calls_successful
    return Measured(
        failed_calls=totals.calls_failed,
        success_ratio=ok / attempted if attempted else None,
        takeover_ms=None,
        setup_p99_ms=totals.percentiles("setup_200")["p99"] if ok else None,
        longest_gap_ms=(longest_gap_slots(answered, last_attempt) * 1000.0 / SLOTS_PER_SECOND
                        if ok and answered else None),
        unfinished_calls=max(0, attempted - ok - totals.calls_failed),
    )


def judge(criteria: Criteria, result: RunResult) -> list[Verdict]:
    return evaluate(criteria, measure(result))
