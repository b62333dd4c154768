"""Reading what the testers measured into the report's per-second call records.

Two sources, one shape (:class:`~sipha.report.model.CallsSecond`):

* sipha's load controller writes JSON lines (one ``interval`` object per second, with merged
  HDR percentiles) as the run goes: read with :func:`read_sipha_jsonl`;
* a SIPp process writes its ``-trace_stat`` CSV: read with the load tester's own
  ``read_sipp_stat_csv`` and bucketed into the run's seconds the same way
  (:func:`read_sipp_stat`).

Both are read again every second for the live view (the files are small: a row per second) and
once more at the end; a missing or half-written file yields what it holds so far.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from sipha.loadtest.stats_output import (
    SippStatFormatError,
    read_sipp_stat_csv,
    sipp_rows_by_second,
)
from sipha.report.model import CallsSecond
from sipha.testbed.plan import Plan

__all__ = ["failed_registrations", "read_sipha_failed_transactions", "read_sipha_jsonl",
           "read_sipha_setup_p99", "read_sipp_stat"]


class _Interval(msgspec.Struct, kw_only=True):
    type: str
    second: int = 0
    time: float = 0.0
    calls_attempted: int = 0
    calls_successful: int = 0
    calls_failed: int = 0
    failed_by_reason: dict[str, int] = msgspec.field(default_factory=dict)
    concurrent_calls: int = 0
    retransmissions: int = 0
    setup_200_ms: dict[str, float] = msgspec.field(default_factory=dict)
    answered_slots: str = ""
    transactions_failed: int = 0


_decoder = msgspec.json.Decoder(_Interval)


class _RunSummary(msgspec.Struct, kw_only=True):
    type: str
    calls_successful: int = 0
    setup_200_ms: dict[str, float] = msgspec.field(default_factory=dict)


_summary_decoder = msgspec.json.Decoder(_RunSummary)


def read_sipha_setup_p99(path: Path) -> float | None:
    """The whole-run INVITE -> 200 p99 (ms) of a sipha load JSONL file, from the controller's
    final ``summary`` line (its histogram merged exactly over agents and seconds); None when
    the file has no such line (the controller did not finish) or no call was answered."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            rec = _summary_decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if rec.type == "summary":
            p99 = rec.setup_200_ms.get("p99")
            return p99 if rec.calls_successful and p99 is not None else None
    return None


def read_sipha_failed_transactions(path: Path) -> int:
    """Failed transactions over a sipha load JSONL file's seconds (in register+call: the
    REGISTERs that ended without a 2xx)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    total = 0
    for line in lines:
        try:
            rec = _decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if rec.type == "interval":
            total += rec.transactions_failed
    return total


def failed_registrations(plan: Plan, outputs: list[tuple[int, Path]]) -> int | None:
    """Failed REGISTERs over the sipha testers' JSONL files (phase index, path) of the
    plan's register+call phases; None when it has none."""
    files = [p for i, p in outputs if plan.phases[i].scenario == "register+call"]
    return sum(read_sipha_failed_transactions(p) for p in files) if files else None


def read_sipha_jsonl(path: Path, *, t0: float, source: str = "sipha") -> list[CallsSecond]:
    """Interval lines of a sipha load JSONL file; ``t`` is run time (``time`` is the end of
    the second, in unix time).  Undecodable lines (a torn last line) are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    out: list[CallsSecond] = []
    for line in text.splitlines():
        try:
            rec = _decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if rec.type != "interval":
            continue
        out.append(CallsSecond(
            t=float(round(rec.time - 1.0 - t0, 3)),
            source=source,
            attempted=rec.calls_attempted,
            successful=rec.calls_successful,
            failed=rec.calls_failed,
            failed_by_reason=dict(rec.failed_by_reason),
            concurrent=rec.concurrent_calls,
            retransmissions=rec.retransmissions,
            setup_ms={k: v for k, v in rec.setup_200_ms.items() if k in ("p50", "p90", "p99")}
            if rec.calls_successful else {},
            answered_slots=rec.answered_slots,
        ))
    return out


def read_sipp_stat(path: Path, *, t0: float, source: str) -> list[CallsSecond]:
    """A SIPp ``-trace_stat`` file as per-second records on the run clock (``t0`` = unix time
    of run time 0).  SIPp gives only a mean response time, kept as ``setup_ms["mean"]``."""
    try:
        rows = read_sipp_stat_csv(path)
    except (OSError, SippStatFormatError):
        return []
    if not rows:
        return []
    means: dict[int, list[float]] = {}
    for row in rows:
        mid = (row.last_reset_time + row.current_time) / 2 - t0
        if row.response_time1_s > 0 and row.stats.calls_successful > 0:
            means.setdefault(int(mid // 1), []).append(row.response_time1_s * 1000.0)
    out: list[CallsSecond] = []
    for second, stats in sorted(sipp_rows_by_second(rows, run_start=t0).items()):
        mean = means.get(second)
        out.append(CallsSecond(
            t=float(second),
            source=source,
            attempted=stats.calls_attempted,
            successful=stats.calls_successful,
            failed=stats.calls_failed,
            failed_by_reason=dict(stats.failed_by_reason),
            concurrent=stats.concurrent_calls,
            retransmissions=stats.retransmissions,
            setup_ms={"mean": sum(mean) / len(mean)} if mean else {},
        ))
    return out
