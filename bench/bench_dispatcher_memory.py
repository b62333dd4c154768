"""Dispatcher memory benchmark: RSS of ``sipha dispatcher`` holding 100,000 concurrent dialogs.

SIPp's built-in ``uac`` -> ``sipha dispatcher`` (hash over Call-ID, probing off) -> four SIPp
``uas``.  SIPp places ``--dialogs`` calls at ``--rate`` with a hold time (``-d``) long enough that
none has ended when the count is read, and ``-l`` as high as the dialogs, so they all stand at
once.  The dispatcher's dialog count comes from its own HTTP API (``GET /status``: the sum of the
servers' confirmed dialogs); its RSS from psutil.

Reported: baseline RSS (after a short warm-up of 200 calls, before the held calls), RSS with the
dialogs held, and bytes per dialog = (RSS - baseline) / dialogs.  Target: under 150 MB at
100,000 dialogs (at most ~1 KB per dialog).

If the dialog count stops growing before ``--dialogs`` (SIPp or the uas cannot hold more on this
machine, or calls fail), the figures are taken at the count reached, and the script says so.

Run: ``.venv/bin/python bench/bench_dispatcher_memory.py [--dialogs 100000] [--rate 2000]``
Every process started here is killed by PID at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import psutil

import harness as h
from sipha.common.process import free_port, wait_sip_options

_TOKEN = "bench-memory"
_STALL = 30.0  # seconds without growth after which the count reached is taken as final


@dataclass
class Sample:
    dialogs: int
    affinity: int
    transactions: int
    rss: int


def _status(http: str) -> dict[str, Any]:
    req = urllib.request.Request(f"http://{http}/status",
                                 headers={"Authorization": f"Bearer {_TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        body: dict[str, Any] = json.load(resp)
    return body


def sample(http: str, disp: psutil.Process) -> Sample:
    st = _status(http)
    return Sample(
        dialogs=sum(int(s["dialogs"]) for s in st["servers"]),
        affinity=int(st["affinity_entries"]),
        transactions=int(st["open_transactions"]),
        rss=disp.memory_info().rss,
    )


def _sipp_uac(procs: h.Procs, target: str, *, rate: float, calls: int, hold: float,
              log: str) -> subprocess.Popen[bytes]:
    return procs.start(
        ["sipp", "-sn", "uac", target, "-i", "127.0.0.1", "-p", str(free_port()),
         "-r", str(rate), "-m", str(calls), "-l", str(calls), "-d", str(int(hold * 1000)),
         "-nostdin", "-trace_stat", "-stf", str(procs.tmp / f"{log}.csv"), "-fd", "1",
         *h.SIPP_FAST],
        log=log,
    )


def sipp_counts(procs: h.Procs, log: str) -> tuple[int, int]:
    """SIPp's own (calls created, calls failed) so far: tells who stalls when the count does."""
    path = procs.tmp / f"{log}.csv"
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
    except OSError:
        return 0, 0
    if len(rows) < 2:
        return 0, 0
    last = dict(zip(rows[0], rows[-1], strict=False))
    return (int(float(last.get("TotalCallCreated") or 0)),
            int(float(last.get("FailedCall(C)") or 0)))


def run(dialogs: int, rate: float, settle: float) -> tuple[Sample, Sample, bool]:
    """(baseline, held, reached every dialog)."""
    with h.processes() as procs:
        ports = [h.sipp_uas(procs) for _ in range(4)]
        port, http_port = free_port(), free_port()
        http = f"127.0.0.1:{http_port}"
        cmd = [*h.SIPHA, "dispatcher", "--listen", f"udp:127.0.0.1:{port}", "--algorithm",
               "hash-callid", "--probe", "off", "--http", http, "--token", _TOKEN,
               "--log-level", "WARNING"]
        for p in ports:
            cmd += ["--server", f"sip:127.0.0.1:{p}"]
        proc = procs.start(cmd, log="dispatcher.log")
        wait_sip_options("127.0.0.1", port, timeout=15)
        disp = psutil.Process(proc.pid)
        target = f"127.0.0.1:{port}"

        # Warm-up: every code path of a call has run (and its caches filled) before the baseline.
        warm = _sipp_uac(procs, target, rate=100, calls=200, hold=0, log="warm.log")
        warm.wait(timeout=60)
        time.sleep(1.0)
        base = sample(http, disp)
        print(f"  baseline: RSS {base.rss / 2**20:.1f} MB, {base.dialogs} dialogs", flush=True)

        ramp = dialogs / rate
        # Long enough that no held call ends before the count is read, whatever the stalls.
        hold = ramp * 2 + _STALL + settle + 120
        print(f"  SIPp uac: {dialogs} calls at {rate:.0f}/s (~{ramp:.0f} s), hold "
              f"{hold:.0f} s, -l {dialogs}", flush=True)
        uac = _sipp_uac(procs, target, rate=rate, calls=dialogs, hold=hold, log="uac.log")
        start = last_growth = time.monotonic()
        best = base
        peak_rss = base.rss
        last_print = 0.0
        while True:
            time.sleep(1.0)
            now = time.monotonic()
            s = sample(http, disp)
            peak_rss = max(peak_rss, s.rss)
            if s.dialogs > best.dialogs:
                best, last_growth = s, now
            if now - last_print >= 5.0:
                last_print = now
                created, failed = sipp_counts(procs, "uac.log")
                print(f"    {now - start:5.0f} s: {s.dialogs:7d} dialogs, {s.transactions:6d} "
                      f"open transactions, RSS {s.rss / 2**20:6.1f} MB; SIPp: {created:7d} "
                      f"placed {failed:5d} failed", flush=True)
            if s.dialogs >= dialogs:
                break
            if now - last_growth > _STALL or uac.poll() is not None:
                break
            if now - start > ramp * 2 + 120:
                break
        # Let the last transactions' state settle; keep the highest reading while held.
        end = time.monotonic() + settle
        while time.monotonic() < end:
            time.sleep(1.0)
            s = sample(http, disp)
            if s.dialogs >= best.dialogs:
                best = s
            peak_rss = max(peak_rss, s.rss)
        held = Sample(best.dialogs, best.affinity, best.transactions, max(best.rss, s.rss))
        print(f"    held: {held.dialogs} dialogs, RSS {held.rss / 2**20:.1f} MB "
              f"(peak {peak_rss / 2**20:.1f} MB)", flush=True)
        return base, held, held.dialogs >= dialogs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dialogs", type=int, default=100_000, help="concurrent dialogs to hold")
    # Below the dispatcher's clean rate on a busy 2-core box: past it, lost datagrams bring
    # retransmission storms and the count climbs slower, not faster.
    ap.add_argument("--rate", type=float, default=1000.0, help="calls/s SIPp places them at")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds to keep reading once every dialog stands")
    args = ap.parse_args()
    base, held, reached = run(args.dialogs, args.rate, args.settle)
    grown = held.rss - base.rss
    per = grown / held.dialogs if held.dialogs else float("nan")
    print()
    print(f"{'dialogs held':28} {held.dialogs:>10d}   (asked {args.dialogs})")
    print(f"{'baseline RSS':28} {base.rss / 2**20:9.1f}M")
    print(f"{'RSS holding the dialogs':28} {held.rss / 2**20:9.1f}M   (target < 150 MB at 100k)")
    print(f"{'bytes per dialog':28} {per:10.0f}   (target <= ~1 KB)")
    print(f"{'affinity entries':28} {held.affinity:>10d}")
    if not reached:
        print(f"note: only {held.dialogs} of {args.dialogs} dialogs stood at once on this "
              "machine; the figures are for that many")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
