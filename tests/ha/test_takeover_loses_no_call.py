"""SIPp uac at 200 calls/s through the service address of an HA pair to four sipha servers;
the active dispatcher fails (SIGKILL, or SIGSTOP: hung, then fenced) at 5 s.

Measured from the dispatchers' own API: takeover time (the old active's last forwarded
message, as it streamed it to the standby, to the new active's first). SIPp's counters are the
referee: zero failed calls. The calls hold 2 s, so ~400 calls set up before the failure end
with a BYE through the new active; SIPp counts a call successful only once its BYE got 200.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from tests.sipp import SippResult, run_uac

from .pair import Pair, pair

RATE = 200
SECONDS = 20
HOLD_MS = 2000


def _load(p: Pair) -> tuple[threading.Thread, dict[str, SippResult]]:
    out: dict[str, SippResult] = {}

    def run() -> None:
        out["r"] = run_uac(p.target, rate=RATE, calls=RATE * SECONDS, timeout=SECONDS + 40,
                           extra=["-d", str(HOLD_MS)])

    t = threading.Thread(target=run)
    t.start()
    return t, out


def _check_calls(r: SippResult) -> None:
    assert r.created == RATE * SECONDS, r.stdout
    assert r.failed == 0, r.stdout
    assert r.successful == RATE * SECONDS, r.stdout


@pytest.mark.parametrize("fault", ["SIGKILL", "SIGSTOP"])
def test_failed_active_is_taken_over_within_300_ms_losing_no_call(
    tmp_path: Path, fault: str
) -> None:
    with pair(tmp_path) as p:
        t, out = _load(p)
        time.sleep(5)
        p.a.signal(getattr(signal, fault))
        t.join()
        r = out["r"]
        ha = p.b.ha()
        assert ha["role"] == "active"
        assert not p.a.alive(), "the hung active was not fenced"
        [takeover] = ha["takeovers"]
        print(f"{fault}: takeover {takeover['takeover_ms']} ms; {r.successful} calls ok")
        assert takeover["takeover_ms"] is not None
        # SIGKILL: the PID watch sees the exit at once, and the bound is 300 ms. A hung
        # active is seen only when the 300 ms token runs out; then it is SIGKILLed and its exit
        # awaited (the fence) before the address is bound. That exit took 11 ms in one loaded
        # clean-clone run (321 ms in all), hence 50 ms for fence and bind.
        limit = 300 if fault == "SIGKILL" else 300 + 50
        assert 0 < takeover["takeover_ms"] <= limit
        _check_calls(r)


@pytest.mark.parametrize("failback", ["sticky", "preempt"])
def test_restarted_node_follows_the_failback_policy_losing_no_call(
    tmp_path: Path, failback: str
) -> None:
    with pair(tmp_path, failback=failback) as p:
        t, out = _load(p)
        time.sleep(5)
        p.a.signal(signal.SIGKILL)
        time.sleep(3)
        p.a.start()
        t.join()
        r = out["r"]
        if failback == "sticky":
            assert p.b.ha()["role"] == "active"
            assert p.a.ha()["role"] == "standby"
            assert p.a.ha()["takeovers"] == []
        else:
            assert p.a.ha()["role"] == "active"
            assert p.b.ha()["role"] == "standby"
            assert len(p.a.ha()["takeovers"]) == 1
        _check_calls(r)
