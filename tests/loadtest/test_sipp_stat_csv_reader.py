"""Reading SIPp's own -trace_stat file: a real SIPp run, and lenient parsing of odd files."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from sipha.loadtest.stats import RunStats
from sipha.loadtest.stats_output import (
    SippStatFormatError,
    read_sipp_stat_csv,
    sipp_rows_by_second,
)

SIPP = shutil.which("sipp")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()  # by PID: only the process this test started
    proc.wait(timeout=5)


def test_real_sipp_uac_run_reads_back_100_successful_calls(tmp_path: Path) -> None:
    assert SIPP is not None
    uas_port, uac_port = _free_udp_port(), _free_udp_port()
    stat = tmp_path / "uac_stat.csv"
    common = ["-i", "127.0.0.1", "-nostdin", "-timeout", "10s"]
    uas = subprocess.Popen(
        [SIPP, "-sn", "uas", "-p", str(uas_port), "-m", "100", *common],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        uac = subprocess.Popen(
            [
                SIPP,
                "-sn",
                "uac",
                f"127.0.0.1:{uas_port}",
                "-p",
                str(uac_port),
                "-r",
                "50",
                "-m",
                "100",
                "-trace_stat",
                "-stf",
                str(stat),
                "-fd",
                "1",
                *common,
            ],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert uac.wait(timeout=12) == 0, "SIPp UAC reported failed calls"
        finally:
            _stop(uac)
    finally:
        _stop(uas)

    rows = read_sipp_stat_csv(stat)
    assert len(rows) >= 2
    assert sum(r.stats.calls_successful for r in rows) == 100
    assert sum(r.stats.calls_attempted for r in rows) == 100
    assert sum(r.stats.calls_failed for r in rows) == 0
    assert all(r.target_rate == 50 for r in rows)
    assert all(r.last_reset_time <= r.current_time for r in rows)
    # merged the same way as sipha agents' reports
    run = RunStats()
    for second, interval in sipp_rows_by_second(rows).items():
        assert run.add("sipp-uac", second, interval)
    totals = run.totals()
    assert (totals.calls_attempted, totals.calls_successful, totals.calls_failed) == (100, 100, 0)
    assert len(run.seconds()) <= 4  # 100 calls at 50/s: about two seconds


HEADER = (
    "StartTime;LastResetTime;CurrentTime;ElapsedTime(P);TargetRate;OutgoingCall(P);"
    "SuccessfulCall(P);FailedCall(P);FailedMaxUDPRetrans(P);FailedUnexpectedMessage(P);"
    "FailedRegexpDoesntMatch(P);FailedTcpClosed(P);Retransmissions(P);CurrentCall;"
    "ResponseTime1(P);"
)


def _row(start: str, reset: str, now: str, counts: str, rt: str = "00:00:00:012000") -> str:
    return f"{start};{reset};{now};00:00:01;10;{counts};{rt};"


def test_lenient_times_missing_columns_and_failure_mapping(tmp_path: Path) -> None:
    path = tmp_path / "stat.csv"
    lines = [
        HEADER,
        "",
        _row(
            "2026-11-25\t04:35:45.000000\t1000.0",
            "2026-11-25\t04:35:45.000000\t1000.0",
            "2026-11-25\t04:35:46.000000\t1001.0",
            "10;5;5;2;1;1;1;3;4",
        ),
        _row("1000.0", "1001.0", "1002.5", "7;7;0;0;0;0;0;0;1", rt="2562047788015:12:55:808000"),
    ]
    path.write_text("\n".join(lines) + "\n")
    first, second = read_sipp_stat_csv(path)
    assert (first.start_time, first.last_reset_time, first.current_time) == (1000, 1000, 1001)
    assert first.response_time1_s == pytest.approx(0.012)
    s = first.stats
    assert (s.calls_attempted, s.calls_successful, s.calls_failed) == (10, 5, 5)
    assert s.failed_by_reason == {"timeout": 2, "unexpected": 1, "other": 1, "transport": 1}
    assert (s.retransmissions, s.concurrent_calls) == (3, 4)
    assert second.current_time == 1002.5
    assert second.stats.calls_successful == 7
    by_second = sipp_rows_by_second([first, second], run_start=1000.0)
    assert sorted(by_second) == [0, 1]
    assert by_second[1].concurrent_calls == 1


def test_failed_call_without_reason_column_counts_as_other(tmp_path: Path) -> None:
    path = tmp_path / "stat.csv"
    path.write_text("CurrentTime;SuccessfulCall(P);FailedCall(P);\n1.0;1;2;\n")
    (row,) = read_sipp_stat_csv(path)
    assert row.stats.failed_by_reason == {"other": 2}
    assert row.stats.calls_failed == 2


def test_truncated_last_line_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "stat.csv"
    full = _row("1000.0", "1000.0", "1001.0", "1;1;0;0;0;0;0;0;0")
    path.write_text(HEADER + "\n" + full + "\n" + full[:25])  # SIPp died mid-row
    assert len(read_sipp_stat_csv(path)) == 1


def test_not_a_sipp_stat_file(tmp_path: Path) -> None:
    path = tmp_path / "stat.csv"
    path.write_text("a;b;c\n1;2;3\n")
    with pytest.raises(SippStatFormatError, match="no SIPp stat header"):
        read_sipp_stat_csv(path)
    path.write_text(HEADER + "\n" + _row("1000.0", "1000.0", "1001.0", "x;1;0;0;0;0;0;0;0") + "\n")
    with pytest.raises(SippStatFormatError, match="line 2: OutgoingCall"):
        read_sipp_stat_csv(path)
    path.write_text("")
    assert read_sipp_stat_csv(path) == []
