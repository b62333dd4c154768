"""Draining a server through the HTTP API: it gets no new call, and the calls it holds
complete normally."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.dispatcher.cluster import cluster
from tests.sipp import SippResult, run_uac


def test_drained_server_gets_no_new_calls_and_its_calls_complete(tmp_path: Path) -> None:
    with cluster(tmp_path, [1, 1, 1, 1], "--algorithm", "wlc", "--probe", "on") as c:
        assert c.dispatcher is not None
        box: list[SippResult] = []
        runner = threading.Thread(
            target=lambda: box.append(
                run_uac(c.target, rate=100, calls=500, timeout=60, extra=["-d", "1500"])
            )
        )
        runner.start()
        time.sleep(2.0)
        drained = c.servers[1]
        answer = c.dispatcher.post(
            f"/servers/{drained.uri.replace(':', '%3A')}/state", {"state": "draining"}, c.token
        )
        assert answer["state"] == "draining"
        held = answer["dialogs"]
        at_drain = answer["calls_total"] + answer["pending_invites"]
        assert held > 0  # it holds calls that must now complete
        runner.join(timeout=60)
        result = box[0]
        assert (result.successful, result.failed) == (500, 0), result.stdout
        time.sleep(0.2)
        after = c.api_servers()[drained.uri]
        assert after["state"] == "draining"
        assert after["calls_total"] <= at_drain
        assert after["dialogs"] == 0
        others = [s for k, s in c.api_servers().items() if k != drained.uri]
        assert sum(s["calls_total"] for s in others) + after["calls_total"] == 500
        answered = int(drained.get("/status")["calls"]["answered"])
        assert answered == after["calls_total"]
