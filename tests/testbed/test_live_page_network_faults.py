"""The live page of a netns run injects network faults: "partition" on s2 from the page (in
Chromium) cuts s2 from every other host; the dispatcher's probes then find it down, and the
page shows s2 inactive (its state at the dispatcher); the fault is on the page's timeline and in
the run's events as a control, and it heals after its duration."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from sipha.testbed.netns import unavailable
from tests.browser import browser_page
from tests.testbed.live_run import live_run

pytestmark = pytest.mark.timeout(150)

PLAN = """
name = "live-netns"
drain = 2
[hosts]
mode = "netns"
[servers]
count = 2
[dispatchers]
count = 1
[[testers]]
name = "t1"
[[phases]]
duration = 30
rate = 10
hold = 1
recv_timeout = 5
"""


def test_network_fault_from_the_page_of_a_netns_run(tmp_path: Path) -> None:
    assert unavailable(euid=os.geteuid(), which=shutil.which) is None, "netns runs need root"
    with live_run(tmp_path, PLAN, start_timeout=60) as run:
        proc, url, token, out = run.proc, run.url, run.token, run.out
        with browser_page() as page:
            page.goto(url)
            page.wait_for_function("Number(document.getElementById('attempted-total')"
                                   ".textContent) > 0", timeout=60000)
            assert page.is_visible("#net-inject")  # a netns run offers network faults
            page.fill("#token", token)
            page.select_option("#net-kind", "partition")
            page.select_option("#net-node", "s2")
            page.fill("#net-duration", "12")
            page.click("#net-inject")
            page.wait_for_function("document.getElementById('control-result').dataset.status"
                                   " === '200'")
            page.wait_for_selector("#nodes tr[data-name='s2'].state-inactive", timeout=10000)
            page.wait_for_selector("#events li.control", timeout=5000)
            assert "partition" in page.inner_text("#events")
            page.click("#stop")
            page.wait_for_function("document.getElementById('control-result').dataset.status"
                                   " === '200'")
        proc.communicate(timeout=60)
        events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
        cuts = [e for e in events if e["kind"] == "fault" and "partition" in e["detail"]]
        assert cuts
        assert "from the live page" in cuts[0]["detail"]
        assert "failed" not in cuts[0]["detail"]
