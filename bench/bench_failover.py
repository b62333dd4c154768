"""HA failover benchmark: SIPp uac through an HA pair of dispatchers to sipha servers, the
active killed mid-run, repeated; prints min/median/max takeover time and failed calls for:

* ``local``: sipha's own HA, local mode (service address on loopback, four servers);
* ``ip``: sipha's own HA, ip mode, between network namespaces on a bridge (`tests.ha.netns`;
  two servers, SIPp in a client namespace); the standby fences the dead node and moves the
  address with ``ip addr`` + gratuitous ARP. Fast detection (the default): the replication
  stream's end plus 20 ms of heartbeat silence is the active's crash;
* ``ip-token``: the same with fast detection off (``--crash-confirm 0``): the heartbeat token
  (300 ms) alone judges, as across hosts before;
* ``keepalived``: the same namespaces, keepalived (Debian's) moving the address by unicast
  VRRP (advert_int 0.1 s, VRRPv3) between two sipha dispatchers in ``external`` mode, with
  contrib/keepalived/sipha-notify.sh making the promote/demote call through
  ``sipha dispatcher ctl`` (a Python start-up on the takeover path);
* ``keepalived-curl``: the same script as shipped, making the call with curl (its default).

The fault: the active's dispatcher gets SIGKILL (with keepalived, the node's keepalived dies
with it: stopped, then killed, so it sends no priority-0 goodbye). Takeover time comes from the
new active's API: its first forwarded message minus the old active's last, as streamed to it.
``ip`` and ``keepalived`` need root. Usage: python bench/bench_failover.py [--runs 10]
[--modes local,ip,keepalived]

``--soak SECONDS`` instead runs the ip-mode pair (fast detection on, token 300 ms) under SIPp
for that long with no fault and counts takeovers (there should be none); ``--soak-hog`` adds a
CPU hog (stress-ng, one worker per core) on the machine for the whole soak.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.ha.netns import available, ns_pair, run_sipp, topology
from tests.ha.pair import pair
from tests.sipp import SippResult, run_uac

MODES = ("local", "ip", "ip-token", "keepalived", "keepalived-curl")
LABELS = {
    "local": "sipha, local mode (loopback)",
    "ip": "sipha, ip mode + fast detection (namespaces)",
    "ip-token": "sipha, ip mode, token only (namespaces, --crash-confirm 0)",
    "keepalived": "keepalived + sipha external mode (contrib notify via sipha dispatcher ctl)",
    "keepalived-curl": "keepalived + sipha external mode (contrib notify via curl, default)",
}


@dataclass
class Runs:
    takeovers: list[float] = field(default_factory=list)
    failed: int = 0
    calls: int = 0
    missing: int = 0
    """Runs where the new active recorded no takeover time."""


def _run_local(tmp: Path, rate: int, seconds: int, kill_at: float) -> tuple[Any, Any]:
    with pair(tmp) as p:
        out: dict[str, SippResult] = {}
        t = threading.Thread(target=lambda: out.setdefault("r", run_uac(
            p.target, rate=rate, calls=rate * seconds, timeout=seconds + 40,
            extra=["-d", "1000"])))
        t.start()
        time.sleep(kill_at)
        p.a.signal(signal.SIGKILL)
        t.join()
        return p.b.ha()["takeovers"], out["r"]


def _run_ns(tmp: Path, mode: str, rate: int, seconds: int, kill_at: float) -> tuple[Any, Any]:
    ha_mode = "external" if mode.startswith("keepalived") else "ip"
    notify_by = "curl" if mode == "keepalived-curl" else "sipha"
    extra = ["--crash-confirm", "0"] if mode == "ip-token" else []
    with topology(tmp) as topo, ns_pair(topo, mode=ha_mode, notify_by=notify_by,
                                        dispatcher_args=extra) as p:
        out: dict[str, SippResult] = {}
        t = threading.Thread(target=lambda: out.setdefault("r", run_sipp(
            topo, "c", p.target, rate=rate, calls=rate * seconds, hold_ms=1000,
            timeout=seconds + 40)))
        t.start()
        time.sleep(kill_at)
        p.crash("d1")
        t.join()
        if p.holder() != ["d2"]:
            print(f"  warning: address on {p.holder()} after the run", flush=True)
        return p.ha("d2")["takeovers"], out["r"]


def one_run(mode: str, rate: int, seconds: int, kill_at: float) -> tuple[float | None, Any]:
    with tempfile.TemporaryDirectory(prefix="sipha-failover-") as tmp:
        if mode == "local":
            takeovers, r = _run_local(Path(tmp), rate, seconds, kill_at)
        else:
            takeovers, r = _run_ns(Path(tmp), mode, rate, seconds, kill_at)
    ms = takeovers[0]["takeover_ms"] if takeovers else None
    return (None if ms is None else float(ms)), r


def soak(seconds: int, rate: int, hog: bool) -> int:
    """The ip-mode pair under load for ``seconds`` with no fault: any takeover is false."""
    with tempfile.TemporaryDirectory(prefix="sipha-soak-") as tmp, \
            topology(Path(tmp)) as topo, ns_pair(topo, mode="ip") as p:
        hogger = None
        if hog:
            hogger = subprocess.Popen(["stress-ng", "--cpu", "0", "--timeout", f"{seconds}s",
                                       "--quiet"], stdout=subprocess.DEVNULL)
            topo.procs.append(hogger)  # killed with the topology whatever happens
        r = run_sipp(topo, "c", p.target, rate=rate, calls=rate * seconds, hold_ms=1000,
                     timeout=seconds + 60)
        d1, d2 = p.ha("d1"), p.ha("d2")
        takeovers = len(d1["takeovers"]) + len(d2["takeovers"])
        print(f"soak {seconds} s at {rate} calls/s{' with a CPU hog' if hog else ''}: "
              f"roles d1 {d1['role']} (term {d1['term']}), d2 {d2['role']} (term {d2['term']}); "
              f"takeovers {takeovers}; failed calls {r.failed} of {r.created}")
        return 0 if takeovers == 0 and d1["role"] == "active" else 1


def summary(runs: Runs) -> str:
    t = runs.takeovers
    times = (f"{min(t):.1f} / {statistics.median(t):.1f} / {max(t):.1f} ms" if t else "n/a")
    extra = f" ({runs.missing} runs without a takeover time)" if runs.missing else ""
    return f"{times} | {runs.failed} of {runs.calls:,}{extra}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--kill-at", type=float, default=3.0)
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    ap.add_argument("--soak", type=int, default=0, metavar="SECONDS",
                    help="instead: run the ip-mode pair this long with no fault, count takeovers")
    ap.add_argument("--soak-hog", action="store_true", help="with --soak: a CPU hog throughout")
    args = ap.parse_args()
    if args.soak:
        why = available()
        if why is not None:
            print(f"cannot soak: {why}", file=sys.stderr)
            return 2
        return soak(args.soak, args.rate, args.soak_hog)
    modes = [m for m in args.modes.split(",") if m]
    if any(m not in MODES for m in modes):
        ap.error(f"--modes: choose among {', '.join(MODES)}")
    why = available()
    if why is not None and any(m != "local" for m in modes):
        print(f"skipping ip and keepalived: {why}", file=sys.stderr)
        modes = [m for m in modes if m == "local"]
    results: dict[str, Runs] = {}
    for mode in modes:
        runs = results[mode] = Runs()
        for i in range(args.runs):
            ms, r = one_run(mode, args.rate, args.seconds, args.kill_at)
            if ms is None:
                runs.missing += 1
            else:
                runs.takeovers.append(ms)
            runs.failed += r.failed
            runs.calls += r.created
            shown = "n/a" if ms is None else f"{ms:.1f} ms"
            print(f"{mode} run {i + 1}: takeover {shown}, failed calls {r.failed}, "
                  f"successful {r.successful} of {r.created}", flush=True)
    print(f"\nSIGKILL of the active, {args.runs} runs each, SIPp uac at {args.rate} calls/s "
          f"for {args.seconds} s, kill at {args.kill_at} s")
    print("| setup | takeover min / median / max | failed calls (SIPp) |")
    print("|---|---|---|")
    for mode, runs in results.items():
        print(f"| {LABELS[mode]} | {summary(runs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
