"""Writing run statistics to files, and reading SIPp's own ``-trace_stat`` files.

Theory of operation
-------------------
:class:`StatCsvWriter` writes one row per second in the layout of SIPp 3.x's ``-trace_stat``
file (``;``-separated, ``(P)`` = this period, ``(C)`` = cumulative), using SIPp's column names
only where the value means the same thing, then sipha's own columns (per-reason failures,
setup-latency percentiles).  :class:`StatJsonlWriter` writes the same per-second data as JSON
lines plus a final summary object.  Both flush after every row, so a crash loses at most the
second being written.  Neither reads the clock: row times derive from the run's ``start_time``
and the second index.

:func:`read_sipp_stat_csv` reads a stat file written by a real SIPp, so that a run driven by
SIPp processes merges through the same :class:`~sipha.loadtest.stats.RunStats` path.  SIPp's
stat file carries counters and a mean response time only, so rows read from it have empty
latency histograms.

Column mapping (sipha -> SIPp):

* ``OutgoingCall``/``TotalCallCreated``: calls attempted (sipha agents are UACs);
* ``FailedCannotSendMessage``: reason ``transport``;
* ``FailedMaxUDPRetrans``: reasons ``timeout`` + ``timeout-f`` (Timer B / F expiry is what SIPp's
  retransmission limit stands for);
* ``FailedUnexpectedMessage``: reason ``unexpected`` plus every status-code failure, since SIPp
  counts an unexpected final response (a 486 where 200 was expected) there;
* ``ResponseTime1``/``ResponseTime1StDev``: mean / standard deviation of INVITE -> 200.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

import msgspec

from sipha.loadtest.histmath import mean_stddev
from sipha.loadtest.stats import (
    PERCENTILES,
    FailureReason,
    IntervalStats,
    LatencyKind,
    RunStats,
    failures_by_reason,
)

__all__ = [
    "CSV_COLUMNS",
    "SIPP_COLUMNS",
    "SippStatFormatError",
    "SippStatRow",
    "StatCsvWriter",
    "StatJsonlWriter",
    "format_sipp_duration",
    "format_sipp_time",
    "read_sipp_stat_csv",
    "sipp_rows_by_second",
]

SEPARATOR: Final = ";"

# SIPp columns sipha fills, in SIPp's order.
SIPP_COLUMNS: Final[tuple[str, ...]] = (
    "StartTime",
    "LastResetTime",
    "CurrentTime",
    "ElapsedTime(P)",
    "ElapsedTime(C)",
    "TargetRate",
    "CallRate(P)",
    "CallRate(C)",
    "OutgoingCall(P)",
    "OutgoingCall(C)",
    "TotalCallCreated",
    "CurrentCall",
    "SuccessfulCall(P)",
    "SuccessfulCall(C)",
    "FailedCall(P)",
    "FailedCall(C)",
    "FailedCannotSendMessage(P)",
    "FailedCannotSendMessage(C)",
    "FailedMaxUDPRetrans(P)",
    "FailedMaxUDPRetrans(C)",
    "FailedUnexpectedMessage(P)",
    "FailedUnexpectedMessage(C)",
    "Retransmissions(P)",
    "Retransmissions(C)",
    "ResponseTime1(P)",
    "ResponseTime1(C)",
    "ResponseTime1StDev(P)",
    "ResponseTime1StDev(C)",
)

_REASON_COLUMNS: Final = tuple(r.value for r in FailureReason)
_LATENCY_PREFIX: Final[dict[LatencyKind, str]] = {
    "setup_18x": "Setup18x",
    "setup_200": "Setup200",
}
_PCT_LABELS: Final = (*(label for label, _ in PERCENTILES), "max")


def _sipha_columns() -> tuple[str, ...]:
    cols: list[str] = []
    for key in _REASON_COLUMNS:
        cols += [f"Failed_{key}(P)", f"Failed_{key}(C)"]
    cols += ["Failed_status(P)", "Failed_status(C)", "FailedStatusCodes(P)"]
    cols += ["PeakCall", "TransactionsOk(P)", "TransactionsOk(C)"]
    cols += ["TransactionsFailed(P)", "TransactionsFailed(C)"]
    for prefix in _LATENCY_PREFIX.values():
        for period in ("P", "C"):
            cols += [f"{prefix}_{label}_ms({period})" for label in _PCT_LABELS]
    return tuple(cols)


CSV_COLUMNS: Final[tuple[str, ...]] = SIPP_COLUMNS + _sipha_columns()
_SIPHA_ONLY_COLUMNS: Final = frozenset(_sipha_columns())


def format_sipp_time(t: float) -> str:
    """SIPp's timestamp cell, ``"2026-11-25\\t04:35:45.123456\\t1764045345.123456"`` (UTC)."""
    stamp = dt.datetime.fromtimestamp(t, tz=dt.UTC)
    return f"{stamp:%Y-%m-%d}\t{stamp:%H:%M:%S.%f}\t{t:.6f}"


def format_sipp_duration(seconds: float, *, micros: bool = True) -> str:
    """SIPp's duration cell: ``HH:MM:SS:uuuuuu`` (or ``HH:MM:SS`` with ``micros=False``)."""
    total_us = max(round(seconds * 1_000_000), 0)
    secs, us = divmod(total_us, 1_000_000)
    hours, rest = divmod(secs, 3600)
    minutes, secs = divmod(rest, 60)
    base = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{base}:{us:06d}" if micros else base


def _fmt_float(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if x else "0"


def _mean_std_s(stats: IntervalStats) -> tuple[float, float]:
    hist = stats.histogram("setup_200")
    if hist is None or hist.get_total_count() == 0:
        return 0.0, 0.0
    mean, std = mean_stddev(hist)
    return mean / 1e6, std / 1e6


def _sipp_view(stats: IntervalStats) -> dict[str, int]:
    """The SIPp failure counters derived from sipha's reasons (see the module docstring)."""
    by = stats.failed_by_reason
    return {
        "FailedCannotSendMessage": by.get(FailureReason.TRANSPORT_ERROR.value, 0),
        "FailedMaxUDPRetrans": by.get(FailureReason.TIMEOUT_B.value, 0)
        + by.get(FailureReason.TIMEOUT_F.value, 0),
        "FailedUnexpectedMessage": by.get(FailureReason.UNEXPECTED_MESSAGE.value, 0)
        + stats.failed_with_status(),
    }


class StatCsvWriter:
    """Writes a SIPp-style stat CSV, one row per second, flushed after each row.

    ``write`` takes the merged stats of one second; the cumulative ``(C)`` columns are kept
    here.  Seconds must come in ascending order (gaps allowed).
    """

    __slots__ = ("_cumulative", "_last_second", "_peak", "_stream", "_target_rate", "start_time")

    def __init__(self, stream: TextIO, *, start_time: float, target_rate: float = 0.0) -> None:
        self._stream = stream
        self.start_time = start_time
        self._target_rate = target_rate
        self._cumulative = IntervalStats()
        self._last_second = -1
        self._peak = 0
        stream.write(SEPARATOR.join(CSV_COLUMNS) + SEPARATOR + "\n")
        stream.flush()

    def write(self, second: int, stats: IntervalStats, *, target_rate: float | None = None) -> None:
        """Append the row for ``second`` (0-based from ``start_time``).

        Raises ``ValueError`` if ``second`` is not after the last written one.
        """
        if second <= self._last_second:
            raise ValueError(f"second {second} written after second {self._last_second}")
        if target_rate is not None:
            self._target_rate = target_rate
        self._last_second = second
        cum = self._cumulative
        cum.extend(stats)
        self._peak = max(self._peak, stats.concurrent_calls)
        elapsed_c = second + 1.0
        p_view, c_view = _sipp_view(stats), _sipp_view(cum)
        p_mean, p_std = _mean_std_s(stats)
        c_mean, c_std = _mean_std_s(cum)
        row: dict[str, str | int] = {
            "StartTime": format_sipp_time(self.start_time),
            "LastResetTime": format_sipp_time(self.start_time + second),
            "CurrentTime": format_sipp_time(self.start_time + elapsed_c),
            "ElapsedTime(P)": format_sipp_duration(1.0, micros=False),
            "ElapsedTime(C)": format_sipp_duration(elapsed_c, micros=False),
            "TargetRate": _fmt_float(self._target_rate),
            "CallRate(P)": _fmt_float(float(stats.calls_attempted)),
            "CallRate(C)": _fmt_float(cum.calls_attempted / elapsed_c),
            "OutgoingCall(P)": stats.calls_attempted,
            "OutgoingCall(C)": cum.calls_attempted,
            "TotalCallCreated": cum.calls_attempted,
            "CurrentCall": stats.concurrent_calls,
            "SuccessfulCall(P)": stats.calls_successful,
            "SuccessfulCall(C)": cum.calls_successful,
            "FailedCall(P)": stats.calls_failed,
            "FailedCall(C)": cum.calls_failed,
            "Retransmissions(P)": stats.retransmissions,
            "Retransmissions(C)": cum.retransmissions,
            "ResponseTime1(P)": format_sipp_duration(p_mean),
            "ResponseTime1(C)": format_sipp_duration(c_mean),
            "ResponseTime1StDev(P)": format_sipp_duration(p_std),
            "ResponseTime1StDev(C)": format_sipp_duration(c_std),
            "PeakCall": self._peak,
            "Failed_status(P)": stats.failed_with_status(),
            "Failed_status(C)": cum.failed_with_status(),
            "FailedStatusCodes(P)": " ".join(
                f"{k}:{n}"
                for k, n in failures_by_reason(stats.failed_by_reason).items()
                if k not in _REASON_COLUMNS
            ),
            "TransactionsOk(P)": stats.transactions_ok,
            "TransactionsOk(C)": cum.transactions_ok,
            "TransactionsFailed(P)": stats.transactions_failed,
            "TransactionsFailed(C)": cum.transactions_failed,
        }
        for name in p_view:
            row[f"{name}(P)"] = p_view[name]
            row[f"{name}(C)"] = c_view[name]
        for key in _REASON_COLUMNS:
            row[f"Failed_{key}(P)"] = stats.failed_by_reason.get(key, 0)
            row[f"Failed_{key}(C)"] = cum.failed_by_reason.get(key, 0)
        for which, prefix in _LATENCY_PREFIX.items():
            for period, source in (("P", stats), ("C", cum)):
                for label, value in source.percentiles(which).items():
                    row[f"{prefix}_{label}_ms({period})"] = _fmt_float(value)
        self._stream.write(SEPARATOR.join(str(row[c]) for c in CSV_COLUMNS) + SEPARATOR + "\n")
        self._stream.flush()

    def cumulative(self) -> IntervalStats:
        """A copy of the running totals written so far."""
        return self._cumulative.copy()


def _interval_object(stats: IntervalStats) -> dict[str, object]:
    return {
        "calls_attempted": stats.calls_attempted,
        "calls_successful": stats.calls_successful,
        "calls_failed": stats.calls_failed,
        "failed_by_reason": failures_by_reason(stats.failed_by_reason),
        "retransmissions": stats.retransmissions,
        "concurrent_calls": stats.concurrent_calls,
        "transactions_ok": stats.transactions_ok,
        "transactions_failed": stats.transactions_failed,
        "setup_18x_ms": stats.percentiles("setup_18x"),
        "setup_200_ms": stats.percentiles("setup_200"),
    }


class StatJsonlWriter:
    """JSON lines: ``{"type": "interval", "second": s, "time": t, ...}`` per second, flushed,
    then one ``{"type": "summary", ...}`` from :meth:`write_summary`."""

    __slots__ = ("_encoder", "_stream", "start_time")

    def __init__(self, stream: TextIO, *, start_time: float) -> None:
        self._stream = stream
        self.start_time = start_time
        self._encoder = msgspec.json.Encoder()

    def _emit(self, obj: Mapping[str, object]) -> None:
        self._stream.write(self._encoder.encode(obj).decode("utf-8") + "\n")
        self._stream.flush()

    def write(self, second: int, stats: IntervalStats) -> None:
        """One line for ``second``; ``time`` is the unix time at the end of that second."""
        self._emit(
            {"type": "interval", "second": second, "time": self.start_time + second + 1}
            | _interval_object(stats)
            # The 10 ms slots in which calls were answered (hex bitmap, bit n = slot n).
            | {"answered_slots": format(stats.answered_slots, "x")}
        )

    def write_summary(self, run: RunStats, *, duration: float | None = None) -> None:
        """The final line: run totals, whole-run percentiles, peak concurrency."""
        seconds = run.seconds()
        if duration is None:
            duration = float(seconds[-1] + 1) if seconds else 0.0
        totals = run.totals()
        self._emit(
            {
                "type": "summary",
                "start_time": self.start_time,
                "duration": duration,
                "agents": sorted(run.agents),
                "peak_concurrent": run.peak_concurrent(),
                "call_rate": totals.calls_attempted / duration if duration > 0 else 0.0,
            }
            | _interval_object(totals)
        )


# -- reading SIPp's -trace_stat file -------------------------------------------------------------


class SippStatFormatError(ValueError):
    """The file is not a SIPp stat CSV (no header, unreadable counter)."""


@dataclass(frozen=True, slots=True)
class SippStatRow:
    """One row of a SIPp stat file: its time span and its periodic ``(P)`` counters."""

    start_time: float
    last_reset_time: float
    current_time: float
    target_rate: float
    response_time1_s: float  # SIPp's mean ResponseTime1(P); no histogram exists in the file
    stats: IntervalStats


def _parse_sipp_time(cell: str) -> float:
    # "2026-11-25\t04:35:45.123456\t1764045345.123456": the unix time is the last token.
    # Be lenient: accept just the unix time, or just a date and a (local) time.
    parts = cell.replace("\t", " ").split()
    if not parts:
        raise ValueError("empty time")
    try:
        return float(parts[-1])
    except ValueError:
        pass
    return dt.datetime.fromisoformat(" ".join(parts[:2])).timestamp()


def _parse_sipp_duration(cell: str) -> float:
    # "HH:MM:SS", "HH:MM:SS:uuuuuu" or "HH:MM:SS.uuu".  SIPp prints garbage like
    # "2562047788015:12:55:808000" for an undefined standard deviation: that parses, harmlessly.
    parts = cell.strip().split(":")
    if len(parts) == 4:
        h, m, s, us = parts
        return int(h) * 3600 + int(m) * 60 + int(s) + int(us) / 1e6
    if len(parts) == 3:
        h, m, s = parts
        return int(h) * 3600 + int(m) * 60 + float(s)
    return float(cell)


# SIPp failure columns -> sipha reason keys; unlisted Failed* columns count as "other".
_SIPP_REASONS: Final[dict[str, str]] = {
    "FailedCannotSendMessage": FailureReason.TRANSPORT_ERROR.value,
    "FailedTcpConnect": FailureReason.TRANSPORT_ERROR.value,
    "FailedTcpClosed": FailureReason.TRANSPORT_ERROR.value,
    "FailedMaxUDPRetrans": FailureReason.TIMEOUT_B.value,
    "FailedTimeoutOnRecv": FailureReason.TIMEOUT_B.value,
    "FailedUnexpectedMessage": FailureReason.UNEXPECTED_MESSAGE.value,
}


def _row_to_stats(cells: Mapping[str, str], line_no: int) -> IntervalStats:
    def count(name: str) -> int:
        raw = cells.get(name, "").strip()
        if not raw:
            return 0
        try:
            value = int(raw)
        except ValueError:
            raise SippStatFormatError(f"line {line_no}: {name} is not a count: {raw!r}") from None
        if value < 0:
            raise SippStatFormatError(f"line {line_no}: {name} is negative: {value}")
        return value

    stats = IntervalStats()
    # A SIPp in UAS role counts IncomingCall; in UAC role OutgoingCall.
    stats.calls_attempted = count("OutgoingCall(P)") + count("IncomingCall(P)")
    stats.calls_successful = count("SuccessfulCall(P)")
    stats.retransmissions = count("Retransmissions(P)")
    stats.concurrent_calls = count("CurrentCall")
    reasons: dict[str, int] = {}
    for name in cells:
        # Every SIPp failure column (P) but the total; sipha's own extra columns are skipped so
        # that a sipha-written file reads back too.
        if (
            name.startswith("Failed")
            and name.endswith("(P)")
            and name != "FailedCall(P)"
            and name not in _SIPHA_ONLY_COLUMNS
        ):
            n = count(name)
            if n:
                key = _SIPP_REASONS.get(name[: -len("(P)")], FailureReason.OTHER.value)
                reasons[key] = reasons.get(key, 0) + n
    failed = count("FailedCall(P)")
    listed = sum(reasons.values())
    # Keep sum(reasons) == calls_failed: SIPp may count a failed call under no reason column
    # (-> "other"), and we never drop a reason SIPp did count.
    if failed > listed:
        reasons[FailureReason.OTHER.value] = reasons.get(FailureReason.OTHER.value, 0) + (
            failed - listed
        )
    stats.calls_failed = max(failed, listed)
    stats.failed_by_reason = reasons
    return stats


def _iter_sipp_rows(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    lines = text.splitlines()
    header_idx = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_idx is None:
        return
    header = [c.strip() for c in lines[header_idx].rstrip(SEPARATOR).split(SEPARATOR)]
    if "CurrentTime" not in header or "SuccessfulCall(P)" not in header:
        raise SippStatFormatError("no SIPp stat header (CurrentTime, SuccessfulCall(P), ...)")
    truncated_tail = not text.endswith("\n")
    for i in range(header_idx + 1, len(lines)):
        line = lines[i]
        if not line.strip():
            continue
        cells = next(csv.reader(io.StringIO(line), delimiter=SEPARATOR, quoting=csv.QUOTE_NONE))
        if len(cells) < len(header) and truncated_tail and i == len(lines) - 1:
            break  # SIPp died mid-row: drop the partial last line
        yield i + 1, dict(zip(header, cells, strict=False))


def read_sipp_stat_csv(path: str | Path) -> list[SippStatRow]:
    """Read a SIPp ``-trace_stat`` file into rows of periodic ``(P)`` counters.

    Lenient about time formats, missing columns (read as 0), blank lines and a truncated last
    line.  Raises :class:`SippStatFormatError` if there is no SIPp header or a present counter
    is not a non-negative integer, and ``OSError`` if the file cannot be read.
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    rows: list[SippStatRow] = []
    for line_no, cells in _iter_sipp_rows(text):
        try:
            current = _parse_sipp_time(cells.get("CurrentTime", ""))
            start = _parse_sipp_time(cells.get("StartTime", "")) if "StartTime" in cells else 0.0
            reset = (
                _parse_sipp_time(cells["LastResetTime"]) if "LastResetTime" in cells else current
            )
        except ValueError as exc:
            raise SippStatFormatError(f"line {line_no}: bad time: {exc}") from None
        try:
            rate = float(cells.get("TargetRate", "0") or 0)
        except ValueError:
            rate = 0.0
        try:
            rt1 = _parse_sipp_duration(cells.get("ResponseTime1(P)", "0") or "0")
        except ValueError:
            rt1 = 0.0
        rows.append(
            SippStatRow(
                start_time=start,
                last_reset_time=reset,
                current_time=current,
                target_rate=rate if math.isfinite(rate) else 0.0,
                response_time1_s=rt1,
                stats=_row_to_stats(cells, line_no),
            )
        )
    return rows


def sipp_rows_by_second(
    rows: list[SippStatRow], *, run_start: float | None = None
) -> dict[int, IntervalStats]:
    """Bucket SIPp rows into the run's seconds, ready for ``RunStats.add(agent, second, ...)``.

    SIPp's periods do not line up with seconds (its first row is a dump at start, its last a
    partial period), so each row goes to the second holding the middle of its period, measured
    from ``run_start`` (default: the file's StartTime).  Rows landing in the same second are
    folded in order (counters add, the gauge keeps the later value).
    """
    if not rows:
        return {}
    origin = rows[0].start_time if run_start is None else run_start
    out: dict[int, IntervalStats] = {}
    for row in rows:
        mid = (row.last_reset_time + row.current_time) / 2 - origin
        second = max(math.floor(mid), 0)
        bucket = out.get(second)
        if bucket is None:
            out[second] = row.stats.copy()
        else:
            bucket.extend(row.stats)
    return out
