"""A pair that shares no state and watches no PID (the paper's Pacemaker pair): the standby
notices a killed active only when its heartbeats stop (the token), and still measures the
takeover from the last forward its peer announced in its heartbeats; a preempting return is
measured the same way."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from tests.sipp import SippResult, run_uac

from .pair import HaDispatcher, pair

TOKEN_MS = 300
HEARTBEAT_MS = 100


def _wait_active(d: HaDispatcher, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if d.ha()["role"] == "active":
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(d.log_text()[-2000:])


def test_token_takeover_and_preempt_are_measured_from_heartbeats(tmp_path: Path) -> None:
    with pair(tmp_path, failback="preempt",
              extra=("--no-replicate", "--no-watch-pid")) as p:
        out: dict[str, SippResult] = {}
        load = threading.Thread(target=lambda: out.update(
            r=run_uac(p.target, rate=100, calls=1000, timeout=40, extra=["-d", "500"])))
        load.start()
        time.sleep(2.5)
        p.a.signal(signal.SIGKILL)
        _wait_active(p.b)
        time.sleep(2.0)
        p.a.start()
        _wait_active(p.a)
        load.join()
        [kill] = p.b.ha()["takeovers"]
        [back] = p.a.ha()["takeovers"]
        # The same on /metrics, for a Grafana board: role, takeovers, the last one's length.
        metrics = p.b.metrics()
        assert "sipha_ha_takeovers_total 1.0" in metrics
        assert f"sipha_ha_last_takeover_ms {float(kill['takeover_ms'])}" in metrics
        assert 'sipha_ha_role{role="standby"} 1.0' in metrics
        print(f"\nkill: {kill}\nback: {back}")
    # Nothing told the standby about the kill but the silence: a token after the last
    # heartbeat, which itself may be a heartbeat interval older than the last forward.
    assert kill["takeover_ms"] is not None
    assert TOKEN_MS - HEARTBEAT_MS <= kill["takeover_ms"] <= TOKEN_MS + HEARTBEAT_MS + 200, kill
    # The handover is planned (the standby releases, the claimer binds): far shorter.
    assert back["takeover_ms"] is not None
    assert 0 < back["takeover_ms"] < TOKEN_MS, back
    assert out["r"].created == 1000
