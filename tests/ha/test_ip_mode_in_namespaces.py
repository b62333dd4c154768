"""``ip`` mode between the test's own hosts (network namespaces on a bridge, see `netns`).

Two dispatchers in ip mode (d1 active), two sipha servers, SIPp uac in a client namespace
calling the service address. The active is SIGKILLed mid-run; the standby, after the heartbeat
token, fences it (kills the PID, takes the address off its interface), adds the address to its
own eth0 and announces it with gratuitous ARP. Checked: the address moved, the client
namespace saw the new active's gratuitous ARP and its ARP cache now points at the new active,
and SIPp counts zero failed calls.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

from .netns import VIP, arp_watch, available, garps, ns_pair, run_sipp, topology

RATE = 100
SECONDS = 8
HOLD_MS = 1000
KILL_AT = 3.0


def test_sigkilled_active_address_moves_with_gratuitous_arp_losing_no_call(
    tmp_path: Path,
) -> None:
    missing = available()
    assert missing is None, f"namespace test bed unavailable: {missing} (make test installs it)"
    started = time.monotonic()
    with topology(tmp_path) as topo, ns_pair(topo, mode="ip") as p:
        assert p.holder() == ["d1"]
        mac_d1, mac_d2 = topo.mac("d1"), topo.mac("d2")
        arp_log = arp_watch(topo, "c", VIP)
        out: dict[str, Any] = {}
        t = threading.Thread(target=lambda: out.setdefault("r", run_sipp(
            topo, "c", p.target, rate=RATE, calls=RATE * SECONDS, hold_ms=HOLD_MS,
            timeout=SECONDS + 30)))
        t.start()
        time.sleep(KILL_AT)
        assert topo.neighbour("c", VIP) == mac_d1, "the client was not calling d1"
        killed_at = time.time()
        p.procs["d1"].send_signal(signal.SIGKILL)
        p.procs["d1"].wait(timeout=5)
        t.join()
        r = out["r"]

        assert p.holder() == ["d2"], "the address did not move (or d1 was not fenced)"
        ha = p.ha("d2")
        assert ha["role"] == "active"
        [takeover] = ha["takeovers"]
        seen = [(op, mac) for ts, op, mac in garps(arp_log) if ts >= killed_at]
        assert (1, mac_d2) in seen, seen  # ARP request form
        assert (2, mac_d2) in seen, seen  # ARP reply form
        assert all(mac == mac_d2 for _, mac in seen), seen
        assert topo.neighbour("c", VIP) == mac_d2
        print(f"ip mode: takeover {takeover['takeover_ms']} ms; {r.successful} calls ok")
        # the stream's end + 20 ms of silence (or at worst the token) + fence + ip addr
        assert takeover["takeover_ms"] is not None
        assert 0 < takeover["takeover_ms"] <= 500
        assert r.created == RATE * SECONDS, r.stdout
        assert r.failed == 0, r.stdout
        assert r.successful == RATE * SECONDS, r.stdout
    assert time.monotonic() - started < 60
