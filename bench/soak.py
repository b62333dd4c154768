"""Soak: a sipha server answering SIPp's ``uac`` at a steady rate; resident memory over time.

SIPp's built-in ``uac`` (INVITE, 200, ACK, BYE, 200; no hold) -> ``sipha server --answer
service``. After a warm-up of ``--warmup`` seconds at the rate (every transaction of a call has
lingered its RFC 3261 32 s by then, so the table holds its steady-state population), RSS is
sampled once a second for ``--seconds``. Reported:

* RSS at rest (started, warm-up calls done, every transaction ended);
* RSS at the rate after warm-up (median of the samples), and its growth from the first to the
  last tenth of the soak (the target is at most +10 %);
* the lingering transactions (the server's ``/status``) and bytes per lingering transaction =
  (RSS at the rate - RSS at rest) / transactions;
* SIPp's failed calls (must be 0: a soak that drops calls measures nothing).

Run: ``.venv/bin/python bench/soak.py [--rate 500] [--warmup 40] [--seconds 60]``
(issue 19's soak is ``--seconds 600``). Every process started here is killed by PID at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
import urllib.request
from typing import Any

import psutil

import harness as h
from sipha.common.process import free_port, wait_sip_options


def _status(http: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{http}/status", timeout=10) as resp:
        body: dict[str, Any] = json.load(resp)
    return body


def _uac(procs: h.Procs, target: str, *, rate: float, calls: int, log: str) -> Any:
    return procs.start(
        ["sipp", "-sn", "uac", target, "-i", "127.0.0.1", "-p", str(free_port()),
         "-r", str(rate), "-m", str(calls), "-d", "0", "-nostdin", "-trace_stat",
         "-stf", str(procs.tmp / f"{log}.csv"), "-fd", "1", *h.SIPP_FAST],
        log=log,
    )


def _failed(procs: h.Procs, log: str) -> int:
    path = procs.tmp / f"{log}.csv"
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return -1
    if len(lines) < 2:
        return -1
    row = dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))
    return int(float(row.get("FailedCall(C)") or 0))


def _wait_idle(http: str, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and int(_status(http)["transactions"]) > 0:
        time.sleep(1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--warmup", type=float, default=40.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    mib = 2**20
    with h.processes() as procs:
        port, http_port = free_port(), free_port()
        http = f"127.0.0.1:{http_port}"
        proc = procs.start(
            [*h.SIPHA, "server", "--listen", f"udp:127.0.0.1:{port}", "--answer", "service",
             "--http", http, "--log-level", "WARNING"],
            log="server.log",
        )
        wait_sip_options("127.0.0.1", port, timeout=15)
        server = psutil.Process(proc.pid)
        target = f"127.0.0.1:{port}"

        # At rest: every code path of a call has run once, then every transaction has ended.
        warm = _uac(procs, target, rate=100, calls=300, log="warm")
        warm.wait(timeout=60)
        _wait_idle(http, 60)
        rest = server.memory_info().rss
        print(f"at rest: RSS {rest / mib:.1f} MB", flush=True)

        total = int(args.rate * (args.warmup + args.seconds + 5))
        uac = _uac(procs, target, rate=args.rate, calls=total, log="soak")
        time.sleep(args.warmup)
        samples: list[tuple[int, int]] = []
        end = time.monotonic() + args.seconds
        txns = 0
        while time.monotonic() < end and uac.poll() is None:
            time.sleep(1.0)
            # A busy server answers its HTTP API late: then keep the last count.
            with contextlib.suppress(OSError):
                txns = int(_status(http)["transactions"])
            samples.append((server.memory_info().rss, txns))
        uac.kill()
        uac.wait(timeout=10)
        failed = _failed(procs, "soak")
        if not samples:
            raise SystemExit("SIPp ended before the soak began")
        rss = statistics.median(s[0] for s in samples)
        median_txns = statistics.median(s[1] for s in samples)
        tenth = max(1, len(samples) // 10)
        first = statistics.median(s[0] for s in samples[:tenth])
        last = statistics.median(s[0] for s in samples[-tenth:])
        print(f"at {args.rate:.0f} calls/s after {args.warmup:.0f} s warm-up: RSS "
              f"{rss / mib:.1f} MB (peak {max(s[0] for s in samples) / mib:.1f}), "
              f"{median_txns:.0f} lingering transactions", flush=True)
        print(f"bytes per lingering transaction: {(rss - rest) / max(median_txns, 1):.0f}")
        print(f"growth over {len(samples)} s: {first / mib:.1f} -> {last / mib:.1f} MB "
              f"({100 * (last - first) / first:+.1f} %)")
        print(f"SIPp failed calls: {failed}")


if __name__ == "__main__":
    main()
