"""What cluster-wide replay protection costs per authenticated call, on SQLite and on Redis.

SIPp makes authenticated calls (``tests/server/scenarios/uac_auth.xml``: INVITE, 407, ACK,
INVITE with Proxy-Authorization answering a fresh nonce, 200, ACK, BYE) to a ``sipha server
--auth-invite --answer service``. Each call's nonce-count is checked:

- **store**: as shipped, through the shared store (``Store.advance_nonce_count``: one atomic
  upsert on SQLite, one Lua script on Redis), so a request is accepted once in the cluster;
- **per process**: the check as it was before issue 14, a dict in the server process (the
  server is started through ``_per_process_nonce_count.py``, which swaps the function in).

The CPU of the server (and of redis-server, for Redis) is read before and after each step;
the table gives CPU milliseconds per call side by side. One run, alternating the variants.

Run: ``.venv/bin/python bench/bench_auth.py [--rate 100] [--seconds 5] [--repeats 1]``
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import harness as h
from sipha.common.process import free_port, wait_sip_options, wait_tcp

SCENARIO = h.ROOT / "tests" / "server" / "scenarios" / "uac_auth.xml"
PER_PROCESS = Path(__file__).resolve().parent / "_per_process_nonce_count.py"


@dataclass
class Variant:
    store: str  # "sqlite" | "redis"
    check: str  # "store" | "per process"
    target: str
    server_pid: int
    store_pid: int | None


@contextlib.contextmanager
def variant(store: str, check: str) -> Iterator[Variant]:
    with h.processes() as procs:
        store_pid = None
        if store == "redis":
            rport = free_port(kind=1)
            redis = procs.start(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", str(procs.tmp)],
                                log="redis.log")
            wait_tcp("127.0.0.1", rport, timeout=15)
            url, store_pid = f"redis://127.0.0.1:{rport}/0", redis.pid
        else:
            url = f"sqlite:{procs.tmp / 'bench.db'}"
        subprocess.run([*h.SIPHA, "users", "--store", url, "add", "alice", "alicepw",
                        "--domain", "sipha.local"], check=True, capture_output=True, timeout=60)
        port = free_port()
        launcher = [sys.executable, str(PER_PROCESS)] if check == "per process" else h.SIPHA
        server = procs.start(
            [*launcher, "server", "--listen", f"udp:127.0.0.1:{port}", "--store", url,
             "--auth-invite", "--answer", "service", "--log-level", "WARNING"],
            log="server.log",
        )
        wait_sip_options("127.0.0.1", port, timeout=15)
        yield Variant(store, check, f"127.0.0.1:{port}", server.pid, store_pid)


def step(v: Variant, rate: float, seconds: float) -> tuple[int, int, float, float]:
    """(successful, failed, server CPU s, store CPU s) for ``rate`` x ``seconds`` calls."""
    calls = max(1, int(rate * seconds))
    with tempfile.TemporaryDirectory(prefix="sipha-auth-") as tmp:
        stat = Path(tmp) / "stat.csv"
        cmd = ["sipp", v.target, "-sf", str(SCENARIO), "-s", "service", "-au", "alice",
               "-ap", "alicepw", "-auth_uri", f"service@{v.target}", "-i", "127.0.0.1",
               "-p", str(free_port()), "-r", str(rate), "-m", str(calls), "-nostdin",
               "-trace_stat", "-stf", str(stat), "-fd", "1", *h.SIPP_FAST]
        server0 = h.cpu_seconds([v.server_pid])
        store0 = h.cpu_seconds([v.store_pid]) if v.store_pid else 0.0
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=tmp)
        try:
            proc.wait(timeout=seconds * 3 + 40)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        server_cpu = h.cpu_seconds([v.server_pid]) - server0
        store_cpu = (h.cpu_seconds([v.store_pid]) - store0) if v.store_pid else 0.0
        with stat.open(newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
        row = dict(zip(rows[0], rows[-1], strict=False)) if len(rows) >= 2 else {}
    ok = int(float(row.get("SuccessfulCall(C)", "0") or 0))
    failed = int(float(row.get("FailedCall(C)", "0") or 0))
    return ok, failed, server_cpu, store_cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=100.0, help="authenticated calls/s")
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per step")
    ap.add_argument("--repeats", type=int, default=1, help="steps per variant (median)")
    args = ap.parse_args()
    rows: list[tuple[str, str, int, int, float, float]] = []
    for store in ("sqlite", "redis"):
        with variant(store, "store") as a, variant(store, "per process") as b:
            results: dict[str, list[tuple[int, int, float, float]]] = {"store": [],
                                                                        "per process": []}
            for _ in range(args.repeats):
                for v in (a, b):  # alternating: the machine's speed drifts
                    results[v.check].append(step(v, args.rate, args.seconds))
                    time.sleep(1.0)
            for check, steps in results.items():
                steps.sort(key=lambda s: s[2] / max(1, s[0]))
                ok, failed, server_cpu, store_cpu = steps[len(steps) // 2]
                rows.append((store, check, ok, failed, server_cpu, store_cpu))
    print(f"\nauthenticated calls at {args.rate:.0f}/s for {args.seconds:.0f} s per step")
    print(f"{'store':8} {'nonce-count check':18} {'ok':>6} {'failed':>6} "
          f"{'server ms/call':>15} {'redis ms/call':>14} {'total ms/call':>14}")
    for store, check, ok, failed, server_cpu, store_cpu in rows:
        n = max(1, ok)
        print(f"{store:8} {check:18} {ok:6d} {failed:6d} {server_cpu / n * 1000:15.3f} "
              f"{store_cpu / n * 1000:14.3f} {(server_cpu + store_cpu) / n * 1000:14.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
