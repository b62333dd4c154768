"""`sipha run PLAN --web`: the live page of a real plan run (servers, the dispatcher pair, a
sipha tester), in Chromium. Counters and the calls chart advance each second; without the token
every control is refused; "kill" on a server marks it killed and puts the fault on the timeline
(and in the run's events, like a scheduled fault); a new rate is followed within a couple of
seconds; a server drained from the page shows as draining (its state at the active
dispatcher); "stop" ends the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser import browser_page
from tests.testbed.live_run import live_run

pytestmark = pytest.mark.timeout(150)

PLAN = """
name = "live"
description = "The live page: two servers, the pair, one agent; s2 killed from the page."
drain = 3
[servers]
count = 2
[[testers]]
name = "t1"
[[phases]]
duration = 40
rate = 20
hold = 1
"""


def test_live_page_of_a_plan_run(tmp_path: Path) -> None:
    with live_run(tmp_path, PLAN) as run:
        proc, url, token, out = run.proc, run.url, run.token, run.out
        with browser_page() as page:
            page.goto(url)
            page.wait_for_function("Number(document.getElementById('attempted-total')"
                                   ".textContent) > 0", timeout=60000)
            first = int(page.inner_text("#attempted-total"))
            points = int(page.get_attribute("#chart-calls", "data-points") or 0)
            page.wait_for_function(f"Number(document.getElementById('attempted-total')"
                                   f".textContent) > {first}", timeout=8000)
            page.wait_for_function(f"Number(document.getElementById('chart-calls')"
                                   f".dataset.points) > {points}", timeout=8000)
            page.wait_for_selector("#nodes tr[data-name='s2']")
            assert not page.is_visible("#net-inject")  # network faults need a netns run

            page.select_option("#fault-node", "s2")
            page.select_option("#fault-action", "kill")
            page.click("#inject")  # no token: refused
            page.wait_for_function("document.getElementById('control-result').dataset.status"
                                   " === '401'")
            page.fill("#token", token)
            page.click("#inject")
            page.wait_for_function("document.getElementById('control-result').dataset.status"
                                   " === '200'")
            page.wait_for_selector("#nodes tr[data-name='s2'].state-killed", timeout=8000)
            page.wait_for_selector("#events li.control", timeout=5000)
            assert "kill s2" in page.inner_text("#events")
            # The rate: the sipha tester's controller shares it among its agents, and the
            # attempted calls per second follow within a couple of seconds.
            page.fill("#rate", "45")
            page.click("#set-rate")
            page.wait_for_function("document.getElementById('control-result').dataset.status"
                                   " === '200'")
            page.wait_for_function("Number(document.getElementById('rate-now').textContent)"
                                   " >= 40", timeout=8000)
            # Drain s1 on the dispatchers: the page shows the state the active one reports.
            page.select_option("#server-node", "s1")
            page.select_option("#server-state", "draining")
            page.click("#set-server")
            page.wait_for_function("document.getElementById('control-result').dataset.status"
                                   " === '200'")
            page.wait_for_selector("#nodes tr[data-name='s1'].state-draining", timeout=8000)
            rows = page.evaluate("fetch('/api/state').then((r) => r.json())")["rows"]
            assert all("retransmissions" in r for r in rows)
            # docs/figures/live-page.png was taken here, a few seconds after the kill.
            page.screenshot(path=str(tmp_path / "live-page.png"), full_page=True)
            page.click("#stop")
            page.wait_for_function("document.getElementById('control-result').dataset.status"
                                   " === '200'")
        proc.communicate(timeout=60)
        assert proc.returncode == 130  # interrupted from the page
        events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
        kills = [e for e in events if e["kind"] == "fault" and e["node"] == "s2"]
        assert kills
        assert "live page" in kills[0]["detail"]
        assert (out / "report.html").exists()
