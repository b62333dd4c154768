"""The report judges a run by its criteria: summary.json, report.html and the comparison page
show each criterion with what was measured, its bound and its verdict."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sipha.common.expect import Criteria
from sipha.report.render import render_comparison, render_report
from tests.report.synthetic import write_synthetic

# 300 calls, 8 failed (4 in each of seconds 5 and 6), one 250 ms takeover.
CRITERIA = Criteria(max_failed_calls=0, min_success_ratio=0.9, max_takeover_ms=300)


def test_summary_json_holds_each_verdict(tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path / "run", fail_at=(5, 6), expect=CRITERIA)
    render_report(folder)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["verdicts"] == [
        {"criterion": "max_failed_calls", "bound": 0.0, "measured": 8.0, "passed": False},
        {"criterion": "min_success_ratio", "bound": 0.9, "measured": 292 / 300, "passed": True},
        {"criterion": "max_takeover_ms", "bound": 300.0, "measured": 250.0, "passed": True},
    ]
    assert summary["criteria_met"] is False
    html = (folder / "report.html").read_text()
    row = re.search(r"<tr><th>max_failed_calls</th>(.*?)</tr>", html)
    assert row is not None
    assert re.findall(r'<td class="n">(.*?)</td>', row.group(1)) == [
        "8", "&le; 0", '<span class="bad">FAILED</span>']


def test_a_run_without_criteria_says_so(tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path / "run")
    render_report(folder)
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["verdicts"], summary["criteria_met"]) == ([], True)
    assert "no [expect]" in (folder / "report.html").read_text()


def test_comparison_shows_each_profiles_verdicts(tmp_path: Path) -> None:
    paper = write_synthetic(tmp_path / "c-paper", profile="paper", fail_at=(5, 6, 7),
                            expect=Criteria(min_success_ratio=0.9))
    default = write_synthetic(tmp_path / "c-default", expect=Criteria(max_failed_calls=0))
    text = render_comparison([paper, default], tmp_path / "compare.html").read_text()
    failed = re.search(r"<tr><th>max_failed_calls</th>(.*?)</tr>", text)
    ratio = re.search(r"<tr><th>min_success_ratio</th>(.*?)</tr>", text)
    assert failed is not None
    assert ratio is not None
    # Each run is judged by its own profile's criteria; a dash where it has none.
    assert failed.group(1) == ("<td>&ndash;</td>"
                               '<td>0 (bound &le; 0): <span class="ok">met</span></td>')
    assert ratio.group(1) == ('<td>0.96 (bound &ge; 0.9): <span class="ok">met</span></td>'
                              "<td>&ndash;</td>")
