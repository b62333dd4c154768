"""HA failover benchmark: SIPp uac through an HA pair (local mode) to four sipha servers, the
active SIGKILLed mid-run, repeated; prints min/median/max takeover time and failed calls.

Takeover time comes from the new active's API (its first forwarded message minus the old
active's last, as streamed to it). Usage: python bench/bench_failover.py [--runs 10]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.ha.pair import pair
from tests.sipp import SippResult, run_uac


def one_run(tmp: Path, rate: int, seconds: int, kill_at: float) -> tuple[float, int, int]:
    with pair(tmp) as p:
        out: dict[str, SippResult] = {}
        t = threading.Thread(target=lambda: out.setdefault("r", run_uac(
            p.target, rate=rate, calls=rate * seconds, timeout=seconds + 40,
            extra=["-d", "1000"])))
        t.start()
        time.sleep(kill_at)
        p.a.signal(signal.SIGKILL)
        t.join()
        takeover = p.b.ha()["takeovers"][0]["takeover_ms"]
        r = out["r"]
        return float(takeover), r.failed, r.successful


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=8)
    args = ap.parse_args()
    takeovers: list[float] = []
    failed = 0
    ok = 0
    for i in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="sipha-failover-") as tmp:
            ms, f, s = one_run(Path(tmp), args.rate, args.seconds, kill_at=3.0)
        takeovers.append(ms)
        failed += f
        ok += s
        print(f"run {i + 1}: takeover {ms:.1f} ms, failed calls {f}, successful {s}", flush=True)
    print(f"sipha local mode, SIGKILL, {args.runs} runs at {args.rate} calls/s: takeover "
          f"min {min(takeovers):.1f} / median {statistics.median(takeovers):.1f} / "
          f"max {max(takeovers):.1f} ms; failed calls {failed} of {failed + ok}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
