"""Run verdicts: what a run must meet, what it measured, and whether it met it.

A plan's ``[expect]`` table (``sipha run``) and the ``--max-*``/``--min-*`` flags of ``sipha
load`` both become a :class:`Criteria`: any subset of the bounds in :data:`CRITERIA`.  Each
command measures its run into a :class:`Measured` and calls :func:`evaluate`, a pure function
(criteria + measurements -> one :class:`Verdict` per criterion set), so the rule for every
criterion lives here once and is tested without a run.

A measurement a criterion needs but the run could not make (no call attempted, so no success
ratio; no takeover seen although the plan bounds it) fails that criterion: a verdict that
cannot be checked is not a pass.  Exit codes follow the verdicts (:data:`EXIT_MET` 0,
:data:`EXIT_FAILED` 1) unless the run itself could not run (:data:`EXIT_NOT_RUN` 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final, Literal

import msgspec

__all__ = [
    "CRITERIA",
    "EXIT_FAILED",
    "EXIT_MET",
    "EXIT_NOT_RUN",
    "Criteria",
    "CriterionSpec",
    "Measured",
    "Verdict",
    "describe",
    "evaluate",
    "exit_code",
    "fix_for",
    "longest_gap_slots",
    "merged",
]

EXIT_MET: Final = 0
EXIT_FAILED: Final = 1
EXIT_NOT_RUN: Final = 2

_Count = Annotated[int, msgspec.Meta(ge=0)]
_Ms = Annotated[float, msgspec.Meta(ge=0.0)]
_Ratio = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class Criteria(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """Bounds a run must meet; None: not checked.  Field names are the plan's keys."""

    max_failed_calls: _Count | None = None
    min_success_ratio: _Ratio | None = None
    max_takeover_ms: _Ms | None = None
    max_setup_p99_ms: _Ms | None = None
    max_longest_gap_ms: _Ms | None = None
    max_unfinished_calls: _Count | None = None
    max_failed_registrations: _Count | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in CRITERIA)


class Measured(msgspec.Struct, kw_only=True):
    """What a run measured, for the criteria; None: not measured in this run."""

    failed_calls: int
    success_ratio: float | None  # successful / attempted; None when nothing was attempted
    takeover_ms: float | None  # the longest dispatcher takeover; None when none was seen
    setup_p99_ms: float | None  # whole-run INVITE -> 200 p99 (an exact histogram's)
    longest_gap_ms: float | None  # longest stretch with no call answered
    unfinished_calls: int
    # REGISTER transactions of register+call testers that ended without a 2xx (after the
    # transaction's own retransmissions); None: no tester registered.
    failed_registrations: int | None = None


@dataclass(frozen=True, slots=True)
class CriterionSpec:
    """One criterion: the measurement it bounds, from which side, and how to write it."""

    measure: str  # a field of Measured
    side: Literal["max", "min"]
    example: str  # a valid plan line, for error messages


CRITERIA: Final[dict[str, CriterionSpec]] = {
    "max_failed_calls": CriterionSpec("failed_calls", "max", "max_failed_calls = 0"),
    "min_success_ratio": CriterionSpec("success_ratio", "min", "min_success_ratio = 0.95"),
    "max_takeover_ms": CriterionSpec("takeover_ms", "max", "max_takeover_ms = 300"),
    "max_setup_p99_ms": CriterionSpec("setup_p99_ms", "max", "max_setup_p99_ms = 200"),
    "max_longest_gap_ms": CriterionSpec("longest_gap_ms", "max", "max_longest_gap_ms = 500"),
    "max_unfinished_calls": CriterionSpec("unfinished_calls", "max", "max_unfinished_calls = 0"),
    "max_failed_registrations": CriterionSpec("failed_registrations", "max",
                                              "max_failed_registrations = 0"),
}
"""Every criterion by name, in the order verdicts are listed."""


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """One criterion checked: its bound, what was measured (None: not measured), the result."""

    criterion: str
    bound: float
    measured: float | None
    passed: bool


def evaluate(criteria: Criteria, measured: Measured) -> list[Verdict]:
    """One verdict per criterion set in ``criteria``, in :data:`CRITERIA` order.

    ``max_*`` passes when measured <= bound, ``min_*`` when measured >= bound; a criterion
    whose measurement is None fails.
    """
    out: list[Verdict] = []
    for name, spec in CRITERIA.items():
        bound = getattr(criteria, name)
        if bound is None:
            continue
        value = getattr(measured, spec.measure)
        if value is None:
            passed = False
        elif spec.side == "max":
            passed = value <= bound
        else:
            passed = value >= bound
        out.append(Verdict(criterion=name, bound=float(bound),
                           measured=None if value is None else float(value), passed=passed))
    return out


def exit_code(verdicts: list[Verdict]) -> int:
    """:data:`EXIT_MET` when every verdict passed (or none was asked for), else EXIT_FAILED."""
    return EXIT_MET if all(v.passed for v in verdicts) else EXIT_FAILED


def _number(value: float) -> str:
    return f"{value:.4g}" if not value.is_integer() else f"{value:.0f}"


def describe(v: Verdict) -> str:
    """``max_failed_calls: measured 3, bound <= 0: FAILED`` (one line, for a terminal)."""
    side = "<=" if CRITERIA[v.criterion].side == "max" else ">="
    measured = "not measured" if v.measured is None else f"measured {_number(v.measured)}"
    result = "met" if v.passed else "FAILED"
    return f"{v.criterion}: {measured}, bound {side} {_number(v.bound)}: {result}"


def fix_for(criterion: str) -> str:
    """The fix to print for a malformed criterion (``criterion`` may be any key)."""
    spec = CRITERIA.get(criterion)
    if spec is None:
        return f"write one of: {', '.join(CRITERIA)}"
    if criterion == "min_success_ratio":
        return f"write a ratio between 0 and 1, e.g. {spec.example}"
    if criterion.endswith(("_calls", "_registrations")):
        return f"write a whole number >= 0, e.g. {spec.example}"
    return f"write milliseconds >= 0, e.g. {spec.example}"


def merged(base: Criteria, override: Criteria | None) -> Criteria:
    """``base`` with every criterion ``override`` sets replaced (per-profile tables)."""
    if override is None:
        return base
    values = {name: getattr(base, name) for name in CRITERIA}
    values.update({n: getattr(override, n) for n in CRITERIA if getattr(override, n) is not None})
    return Criteria(**values)


def longest_gap_slots(answered: int, last: int) -> int:
    """Longest run of clear bits in the bitmap ``answered`` (bit n: something was answered in
    slot n), from its lowest set bit to the later of its highest set bit and slot ``last``
    (the last slot with an attempt: an outage lasting to the end of the load counts).  0 when
    no bit is set."""
    if answered <= 0:
        return 0
    first = (answered & -answered).bit_length() - 1
    last = max(answered.bit_length() - 1, last)
    # Slot n is character n of the reversed binary string; runs of "0" are the gaps.
    bits = format(answered, "b")[::-1].ljust(last + 1, "0")[first : last + 1]
    return max(len(run) for run in bits.split("1"))
