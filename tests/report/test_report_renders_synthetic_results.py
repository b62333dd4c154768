"""`sipha report` on a synthetic results folder: every file, every figure, offline HTML."""

from __future__ import annotations

import argparse
import base64
import json
import re
from pathlib import Path

import pytest

from sipha.report import cli
from sipha.report.figures import FIGURES
from sipha.report.model import META
from sipha.report.render import render_comparison, render_report
from tests.report.synthetic import write_synthetic

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_writes_summary_csv_figures_and_html(tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path / "run", fail_at=(5, 6))
    report = render_report(folder)
    assert report == folder / "report.html"
    for name in FIGURES:
        png = (folder / "figures" / name).read_bytes()
        assert png.startswith(PNG_MAGIC)
        assert len(png) > 1000
    summary = json.loads((folder / "summary.json").read_text())
    for key in ("calls_attempted", "calls_successful", "calls_failed", "failed_by_reason",
                "calls_per_server", "takeover_ms", "longest_gap_ms", "profile", "plan"):
        assert key in summary
    assert summary["calls_attempted"] == 20 * 15
    assert summary["calls_failed"] == 8
    assert summary["failed_by_reason"] == {"timeout": 8}
    assert summary["takeover_ms"] == [250.0]
    csv_lines = (folder / "calls.csv").read_text().splitlines()
    assert csv_lines[0].startswith(
            "second,attempted,successful,failed,concurrent,retransmissions,failed_timeout")
    assert csv_lines[6].split(",")[:4] == ["5", "15", "11", "4"]


def test_html_is_self_contained(tmp_path: Path) -> None:
    report = render_report(write_synthetic(tmp_path / "run"))
    text = report.read_text()
    # Every image is an embedded PNG that decodes; nothing is fetched from anywhere.
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == len(FIGURES)
    assert all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    # Nothing refers to the network (uPlot's inlined licence header names its home page, in a
    # comment: that is no fetch).
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", text)
    assert not re.search(r"\b(fetch|XMLHttpRequest|WebSocket)\b", text)
    assert 'src="figures/' not in text


def test_comparison_page_puts_profiles_side_by_side(tmp_path: Path) -> None:
    paper = write_synthetic(tmp_path / "c-paper", profile="paper", fail_at=(5, 6, 7))
    default = write_synthetic(tmp_path / "c-default")
    out = render_comparison([paper, default], tmp_path / "compare.html")
    text = out.read_text()
    assert "[paper]" in text
    assert "[default]" in text
    # Figures beside the page are named after it (several plans may share a folder).
    assert (tmp_path / "compare-failed.png").read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / "compare-active-calls.png").read_bytes().startswith(PNG_MAGIC)
    # The failed-calls row shows 12 for paper and 0 for default, in that order.
    row = re.search(r"<th>calls failed</th>(.*?)</tr>", text)
    assert row is not None
    assert re.findall(r">(\d+)</span>", row.group(1)) == ["12", "0"]


def test_cli_renders_and_compares(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_synthetic(tmp_path / "x" / "a", profile="paper")
    b = write_synthetic(tmp_path / "x" / "b")
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.main(parser.parse_args([str(a), str(b)])) == 0
    out = capsys.readouterr().out
    assert f"report: {a / 'report.html'}" in out
    assert (tmp_path / "x" / "compare.html").exists()


def test_cli_refuses_a_folder_that_is_not_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.main(parser.parse_args([str(tmp_path)])) == 2
    assert META in capsys.readouterr().err


def test_torn_last_line_of_an_interrupted_run_is_skipped(tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path / "run", seconds=5)
    with (folder / "calls.jsonl").open("a") as f:
        f.write('{"t": 5.0, "source": "sip')  # killed mid-write
    render_report(folder)
    assert json.loads((folder / "summary.json").read_text())["calls_attempted"] == 75
