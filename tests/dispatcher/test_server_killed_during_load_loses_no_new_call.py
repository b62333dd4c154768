"""One of four sipha servers is SIGKILLed during a 100 calls/s run: calls started after the
kill all succeed (failover inside the INVITE transaction), the dispatcher marks the server
suspect at the first timed-out INVITE and inactive (confirmed by a probe) within one probe
interval times the threshold, and the calls that were already
established on it (counted separately) still end with a successful BYE through another server."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.dispatcher.cluster import cluster
from tests.sipp import SippResult, run_uac

PROBE_INTERVAL = 0.5
THRESHOLD = 2


def test_sigkill_one_server_loses_only_its_established_calls(tmp_path: Path) -> None:
    with cluster(tmp_path, [1, 1, 1, 1], "--algorithm", "rr", "--probe", "on") as c:
        box: list[SippResult] = []
        runner = threading.Thread(
            target=lambda: box.append(
                run_uac(c.target, rate=100, calls=800, timeout=60, extra=["-d", "300"])
            )
        )
        runner.start()
        time.sleep(3.0)
        victim = c.servers[0]
        before = c.api_servers()[victim.uri]
        victim.kill()
        killed_at = time.monotonic()
        after = c.api_servers()[victim.uri]
        inactive_after = None
        while time.monotonic() - killed_at < 3.0:
            if c.api_servers()[victim.uri]["state"] == "inactive":
                inactive_after = time.monotonic() - killed_at
                break
            time.sleep(0.01)
        runner.join(timeout=90)
        result = box[0]
        # Calls established on the victim when it died: those it held just before the kill,
        # plus any it answered between that reading and the kill.
        established = (
            before["dialogs"] + before["pending_invites"]
            + after["calls_total"] - before["calls_total"]
        )
        print(
            f"\nkilled server had {established} established or ringing calls; "
            f"SIPp: {result.successful} ok, "
            f"{result.failed} failed; inactive after {inactive_after} s"
        )
        assert inactive_after is not None
        assert inactive_after <= PROBE_INTERVAL * THRESHOLD
        assert result.successful + result.failed == 800
        # Not even the calls established on the killed server fail: their BYEs go to another
        # server (the dispatcher moves the dialog), which ends them from the shared store.
        assert established >= 1
        assert result.failed == 0, result.stdout
        status_now = c.dispatcher.get("/status", c.token) if c.dispatcher else {}
        assert status_now["stats"]["dialogs_rescued"] >= 1
        status = c.dispatcher.get("/status", c.token) if c.dispatcher else {}
        assert status["stats"]["failovers"] >= 1
        log = c.dispatcher.log.read_text() if c.dispatcher else ""
        # A timed-out INVITE makes it suspect at once; the probe sent then confirms it.
        assert f"server {victim.uri}: suspect -> inactive (probe failed" in log
