"""`sipha load call ... --web`: the live page of a real load against SIPp's uas, in Chromium.
The counters move each second; without the token the controls are refused; a new rate is
followed within about two seconds; stop ends the run cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from sipha.common.process import free_port
from tests import sipp
from tests.browser import browser_page

pytestmark = pytest.mark.timeout(120)


def _token(proc: subprocess.Popen[str], deadline: float) -> tuple[str, str]:
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        m = re.search(r"live page: (\S+)\s+\(controls token, shown once: (\S+)\)", line)
        if m:
            return m.group(1), m.group(2)
    raise AssertionError("sipha load printed no live page address")


def test_live_page_of_a_running_load_follows_the_rate_and_stops_it() -> None:
    web_port = free_port(kind=socket.SOCK_STREAM)
    with sipp.uas() as (port, _):
        proc = subprocess.Popen(
            [sys.executable, "-m", "sipha", "load", "call", f"127.0.0.1:{port}", "--rate", "20",
             "--duration", "40s", "--hold", "0", "--quiet", "--web", f"127.0.0.1:{web_port}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url, token = _token(proc, time.monotonic() + 20)
            assert url == f"http://127.0.0.1:{web_port}/"
            with browser_page() as page:
                page.goto(url)
                page.wait_for_function("Number(document.getElementById('attempted-total')"
                                       ".textContent) >= 20", timeout=15000)
                # The rate control appears once the run is bound to the page.
                page.wait_for_selector(".row[data-control='rate']:not(.hidden)")
                page.fill("#rate", "60")
                page.click("#set-rate")  # no token yet: refused
                page.wait_for_function("document.getElementById('control-result')"
                                       ".dataset.status === '401'")
                page.fill("#token", token)
                page.click("#set-rate")
                page.wait_for_function("document.getElementById('control-result')"
                                       ".dataset.status === '200'")
                # One second after the change is all at the new rate; allow a loaded machine.
                page.wait_for_function("Number(document.getElementById('rate-now')"
                                       ".textContent) >= 55", timeout=6000)
                assert "rate" in page.inner_text("#events")
                page.click("#stop")
                page.wait_for_function("document.getElementById('control-result')"
                                       ".dataset.status === '200'")
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err[-3000:]
            m = re.search(r"attempted (\d+) successful (\d+) failed (\d+)", out)
            assert m, out
            assert m.group(1) == m.group(2)
            assert m.group(3) == "0"
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
