"""`sipha report --index DIR`: every run under DIR listed with its verdict; two ticked runs
compared side by side (checked in Chromium, from the file system, with no server)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sipha.common.expect import Criteria
from sipha.common.process import free_port, wait_tcp
from sipha.report.index import find_runs, render_index
from sipha.report.render import render_report
from tests.browser import browser_page
from tests.report.synthetic import write_synthetic

pytestmark = pytest.mark.timeout(120)


def _results(root: Path) -> None:
    for profile, fail in (("paper", (8, 9)), ("default", ())):
        folder = write_synthetic(root / "case-c" / f"case-c-{profile}", profile=profile,
                                 fail_at=fail, expect=Criteria(max_failed_calls=0))
        render_report(folder)
    (root / "not-a-run").mkdir()
    broken = root / "broken"
    broken.mkdir()
    (broken / "meta.json").write_text("{not json")


def test_index_lists_every_run_with_its_verdict(tmp_path: Path) -> None:
    _results(tmp_path)
    assert [p.name for p in find_runs(tmp_path)] == ["broken", "case-c-default", "case-c-paper"]
    out = subprocess.run([sys.executable, "-m", "sipha", "report", "--index", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "index.html").read_text()
    assert page.count("data-run=") == 2
    assert "verdict-FAILED" in page  # the paper run failed 8 calls against max 0
    assert "verdict-met" in page
    assert "case-c/case-c-paper/report.html" in page
    assert "broken" in page  # listed under "Not read", with the reason


def test_two_ticked_runs_compare_side_by_side_in_chromium(tmp_path: Path) -> None:
    _results(tmp_path)
    index = render_index(tmp_path)
    with browser_page() as page:
        page.goto(index.as_uri())
        boxes = page.locator("input.pick")
        assert boxes.count() == 2
        boxes.nth(0).check()
        boxes.nth(1).check()
        table = page.locator("#compare-table")
        table.wait_for()
        text = table.inner_text()
        assert "[paper]" in text
        assert "[default]" in text
        assert "max_failed_calls" in text
        assert "FAILED" in text
        # The figures are links into the runs' folders, and they load.
        assert page.locator("#compare img").count() >= 2
        page.wait_for_function("[...document.querySelectorAll('#compare img')]"
                               ".every((i) => i.complete && i.naturalWidth > 0)")


def test_index_of_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "sipha", "report", "--index",
                          str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "not a folder" in out.stderr


def test_report_charts_are_interactive_offline(tmp_path: Path) -> None:
    folder = write_synthetic(tmp_path / "run", fail_at=(8,))
    report = render_report(folder)
    with browser_page() as page:
        page.goto(report.as_uri())
        for chart in ("calls", "active", "roles"):
            page.wait_for_function(
                f"Number(document.getElementById('chart-{chart}').dataset.points) > 0")
        # Zoom the roles chart to 50 ms around the takeover: uPlot redraws that window.
        page.evaluate("(() => { const u = document.getElementById('chart-roles').uplot;"
                      " u.setScale('x', {min: 5.0, max: 5.05}); })()")
        span = page.evaluate("(() => { const s = document.getElementById('chart-roles')"
                             ".uplot.scales.x; return s.max - s.min; })()")
        assert abs(span - 0.05) < 1e-6


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_index_served_by_the_web_server_compares_and_serves_only_runs(tmp_path: Path) -> None:
    _results(tmp_path)
    secret = tmp_path / "case-c" / "case-c-paper" / "keys"
    secret.mkdir()
    (secret / "controller.key_secret").write_text("secret")
    (tmp_path / "private.html").write_text("not a run's")
    (tmp_path / "case-c" / "case-c-default" / "escape.html").symlink_to(tmp_path / "private.html")
    port = free_port(kind=socket.SOCK_STREAM)
    proc = subprocess.Popen([sys.executable, "-m", "sipha", "report", "--index", str(tmp_path),
                             "--web", f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_tcp("127.0.0.1", port, timeout=20)
        status, body = _get(base + "/runs/")
        assert status == 200
        assert body.count(b"data-run=") == 2
        assert _get(base + "/runs/case-c/case-c-paper/report.html")[0] == 200
        assert _get(base + "/runs/case-c/case-c-paper/summary.json")[0] == 200
        for bad in ("/runs/private.html", "/runs/../private.html", "/runs/%2e%2e/private.html",
                    "/runs/case-c/case-c-paper/keys/controller.key_secret",
                    "/runs/case-c/case-c-default/escape.html", "/runs/case-c/nope.html",
                    "/runs/broken/meta.json/x.html"):
            status, body = _get(base + bad)
            assert status in (404, 400), bad
            assert b"secret" not in body
            assert b"not a run's" not in body
        with browser_page() as page:
            page.goto(base + "/runs")  # redirected to /runs/
            boxes = page.locator("input.pick")
            boxes.nth(0).check()
            boxes.nth(1).check()
            page.locator("#compare-table").wait_for()
            page.wait_for_function("[...document.querySelectorAll('#compare img')]"
                                   ".every((i) => i.complete && i.naturalWidth > 0)")
            page.click("#runs a")  # a run's own report, through the server
            page.wait_for_function("Number(document.getElementById('chart-calls')"
                                   ".dataset.points) > 0")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def test_web_without_index_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "sipha", "report", "--web", "127.0.0.1:1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "--index DIR" in out.stderr
