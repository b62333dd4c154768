"""The SIPp-style stat CSV and the JSON-lines writer."""

from __future__ import annotations

import io
import json

import pytest

from sipha.loadtest.stats import FailureReason, IntervalStats, RunStats
from sipha.loadtest.stats_output import (
    CSV_COLUMNS,
    SIPP_COLUMNS,
    StatCsvWriter,
    StatJsonlWriter,
    format_sipp_duration,
    format_sipp_time,
    read_sipp_stat_csv,
)

START = 1_764_045_345.123456  # 2025-11-25 04:35:45.123456 UTC


def _second(
    attempts: int, setups: list[float], failures: list[FailureReason | int]
) -> IntervalStats:
    stats = IntervalStats()
    for _ in range(attempts):
        stats.record_attempt()
    for s in setups:
        stats.record_success(s, s / 4)
    for r in failures:
        stats.record_failure(r)
    return stats


class _Recorder(io.StringIO):
    """Counts flushes, to check a row is flushed as soon as it is written."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def test_sipp_cell_formats() -> None:
    assert format_sipp_time(START) == "2025-11-25\t04:35:45.123456\t1764045345.123456"
    assert format_sipp_duration(3723.0000015) == "01:02:03:000002"
    assert format_sipp_duration(61, micros=False) == "00:01:01"


def test_csv_header_uses_sipp_names_then_sipha_columns() -> None:
    out = io.StringIO()
    StatCsvWriter(out, start_time=START, target_rate=50)
    header = out.getvalue().rstrip("\n").rstrip(";").split(";")
    assert tuple(header) == CSV_COLUMNS
    assert header[: len(SIPP_COLUMNS)] == list(SIPP_COLUMNS)
    assert header[:6] == [
        "StartTime",
        "LastResetTime",
        "CurrentTime",
        "ElapsedTime(P)",
        "ElapsedTime(C)",
        "TargetRate",
    ]
    for name in (
        "Failed_timeout(P)",
        "Failed_bye-failed(C)",
        "Setup200_p99.9_ms(P)",
        "Setup18x_max_ms(C)",
        "FailedStatusCodes(P)",
    ):
        assert name in header


def test_csv_rows_periodic_and_cumulative_flushed_each_row() -> None:
    out = _Recorder()
    writer = StatCsvWriter(out, start_time=START, target_rate=50)
    writer.write(0, _second(10, [0.010] * 8, [FailureReason.TIMEOUT_B, 486]))
    assert out.flushes == 2  # header, then the row at once
    second = _second(20, [0.030] * 17, [486, 503, FailureReason.TRANSPORT_ERROR])
    second.concurrent_calls = 6
    second.record_retransmission()
    writer.write(1, second)
    assert out.flushes == 3
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert all(line.endswith(";") for line in lines)
    rows = [dict(zip(CSV_COLUMNS, line.rstrip(";").split(";"), strict=True)) for line in lines[1:]]
    r0, r1 = rows
    assert r1["StartTime"] == format_sipp_time(START)
    assert r1["LastResetTime"] == format_sipp_time(START + 1)
    assert r1["CurrentTime"] == format_sipp_time(START + 2)
    assert (r1["ElapsedTime(P)"], r1["ElapsedTime(C)"]) == ("00:00:01", "00:00:02")
    assert r1["TargetRate"] == "50"
    assert (r1["OutgoingCall(P)"], r1["OutgoingCall(C)"]) == ("20", "30")
    assert r1["TotalCallCreated"] == "30"
    assert (r1["CallRate(P)"], r1["CallRate(C)"]) == ("20", "15")
    assert (r1["SuccessfulCall(P)"], r1["SuccessfulCall(C)"]) == ("17", "25")
    assert (r1["FailedCall(P)"], r1["FailedCall(C)"]) == ("3", "5")
    assert (r1["FailedMaxUDPRetrans(P)"], r1["FailedMaxUDPRetrans(C)"]) == ("0", "1")
    assert (r1["FailedCannotSendMessage(P)"], r1["FailedCannotSendMessage(C)"]) == ("1", "1")
    # SIPp counts an unexpected final response as an unexpected message
    assert (r1["FailedUnexpectedMessage(P)"], r1["FailedUnexpectedMessage(C)"]) == ("2", "3")
    assert (r1["Failed_status(P)"], r1["Failed_status(C)"]) == ("2", "3")
    assert r1["FailedStatusCodes(P)"] == "486:1 503:1"
    assert (r1["Failed_timeout(P)"], r1["Failed_timeout(C)"]) == ("0", "1")
    assert (r1["Retransmissions(P)"], r1["Retransmissions(C)"]) == ("1", "1")
    assert r1["CurrentCall"] == "6"
    # HDR means are of bucket midpoints: equal within the histogram's 3 significant digits
    assert r0["ResponseTime1(P)"].startswith("00:00:00:010")
    assert int(r0["ResponseTime1(P)"][-6:]) == pytest.approx(10_000, rel=1e-3)
    assert int(r1["ResponseTime1(P)"][-6:]) == pytest.approx(30_000, rel=1e-3)
    mean_c = (8 * 10_000 + 17 * 30_000) / 25
    assert int(r1["ResponseTime1(C)"][-6:]) == pytest.approx(mean_c, rel=1e-3)
    assert int(r1["ResponseTime1StDev(P)"][-6:]) < 30  # all 17 samples in one bucket
    assert float(r1["Setup200_p50_ms(P)"]) == pytest.approx(30, rel=1e-3)
    assert float(r1["Setup200_max_ms(C)"]) == pytest.approx(30, rel=1e-3)
    assert float(r1["Setup200_p50_ms(C)"]) == pytest.approx(30, rel=1e-3)  # 17 of 25 at 30 ms
    assert float(r0["Setup18x_p99_ms(P)"]) == pytest.approx(2.5, rel=1e-3)
    assert writer.cumulative().calls_attempted == 30
    with pytest.raises(ValueError, match="after second"):
        writer.write(1, IntervalStats())


def test_our_csv_reads_back_with_the_sipp_reader(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "stat.csv"  # type: ignore[operator]
    with open(path, "w", encoding="utf-8") as fh:
        writer = StatCsvWriter(fh, start_time=START)
        writer.write(0, _second(4, [0.01, 0.02], [FailureReason.TIMEOUT_B, 486]))
    (row,) = read_sipp_stat_csv(path)
    assert row.current_time == pytest.approx(START + 1)
    assert row.stats.calls_attempted == 4
    assert row.stats.calls_successful == 2
    assert row.stats.failed_by_reason == {"timeout": 1, "unexpected": 1}


def test_jsonl_one_object_per_second_then_summary() -> None:
    out = _Recorder()
    writer = StatJsonlWriter(out, start_time=START)
    run = RunStats()
    for second, stats in enumerate([_second(3, [0.01, 0.02], [503]), _second(2, [0.04], [])]):
        stats.concurrent_calls = second + 1
        run.add("agent-1", second, stats)
        writer.write(second, run.interval(second))
    assert out.flushes == 2
    writer.write_summary(run)
    objs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [o["type"] for o in objs] == ["interval", "interval", "summary"]
    first = objs[0]
    assert first["second"] == 0
    assert first["time"] == pytest.approx(START + 1)
    assert first["calls_attempted"] == 3
    assert first["failed_by_reason"] == {"503": 1}
    assert set(first["setup_200_ms"]) == {"p50", "p90", "p99", "p99.9", "max"}
    assert first["setup_200_ms"]["max"] == pytest.approx(20, rel=1e-3)
    summary = objs[2]
    assert summary["calls_attempted"] == 5
    assert summary["calls_successful"] == 3
    assert summary["duration"] == 2.0
    assert summary["call_rate"] == 2.5
    assert summary["peak_concurrent"] == 2
    assert summary["agents"] == ["agent-1"]
    assert summary["setup_200_ms"]["max"] == pytest.approx(40, rel=1e-3)
