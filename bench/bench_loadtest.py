"""Load-tester benchmark: sipha's UAC against SIPp's ``uac``, both calling the same SIPp ``uas``.

One SIPp ``uas`` answers every call (INVITE, 180, 200, ACK, BYE, 200; no hold).  Against it, in
one run, at the same rising rates (each step ``--seconds`` long):

- SIPp: ``sipp -sn uac`` (with ``-max_recv_loops 10000 -max_sched_loops 10000``);
- sipha, 1 agent: ``sipha load call TARGET`` (one process: the local agent);
- sipha, 2 agents: ``sipha load call TARGET --agents 2`` (controller + 2 agent processes).

A step is clean when fewer than 0.1 % of its calls failed and the client kept the rate (its last
call was placed by ``1/0.95`` of the planned time: a client that falls behind is not "at" that
rate even if every call succeeds).  Both clients write SIPp ``-trace_stat`` CSV columns, so one
parser reads both.

CPU is the client's whole process tree (sipha: controller + agents): ``os.wait4`` gives the
exact user+system time of the client and every descendant it reaped, and a psutil sample of the
tree every 0.2 s covers any it did not; the larger is used.  sipha's fixed start-up cost (Python
imports, agent spawn; measured with a one-call run) is subtracted so the figure is per call;
SIPp's start-up is negligible.  CPU per 1,000 calls is compared at the highest rate all three
sustained cleanly.

Memory: one sipha agent (``sipha load call``, one process) holds ``--mem-calls`` concurrent calls
(default 10,000, ``--hold 60s``); the peak RSS of that process is reported (target < 300 MB).

Run: ``.venv/bin/python bench/bench_loadtest.py [--quick] [--seconds 5] [--rates 250,500,...]``
Every process started here is killed by PID at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

import harness as h
from sipha.common.process import free_port

_SAMPLE = 0.2  # seconds between psutil samples of the client tree
_KEEP_UP = 0.95  # share of the planned rate a client must reach for a step to count


@dataclass
class Run:
    """One client process tree's run, as its CSV and the OS saw it."""

    planned: int
    created: int = 0
    successful: int = 0
    failed: int = 0
    peak_concurrent: int = 0
    place_seconds: float = float("inf")  # when its last call was placed (from the CSV)
    cpu: float = 0.0
    peak_rss: dict[str, int] = field(default_factory=dict)  # process name -> bytes
    wall: float = 0.0
    killed: bool = False


@dataclass
class Step:
    rate: float
    run: Run
    overhead: float  # fixed CPU of a run of this client (start-up), subtracted

    @property
    def failed(self) -> int:
        # Calls never placed or never finished count as failed: the client held them back.
        r = self.run
        return max(r.failed, r.planned - r.successful)

    @property
    def achieved(self) -> float:
        return self.run.planned / self.run.place_seconds if self.run.place_seconds > 0 else 0.0

    @property
    def clean(self) -> bool:
        r = self.run
        return (r.successful > 0 and self.failed <= r.planned * 0.001
                and self.achieved >= self.rate * _KEEP_UP)

    @property
    def cpu_per_1000(self) -> float:
        return max(0.0, self.run.cpu - self.overhead) / max(1, self.run.successful) * 1000


def _epoch(cell: str) -> float:
    # SIPp's time cells are "date<TAB>time<TAB>unix-seconds".
    return float(cell.split("\t")[-1])


def read_stat_csv(path: Path, run: Run) -> None:
    """Fill ``run`` from a SIPp ``-trace_stat`` CSV (SIPp's or sipha's: same columns)."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        table = list(csv.reader(f, delimiter=";"))
    if len(table) < 2:
        return
    rows = [dict(zip(table[0], row, strict=False)) for row in table[1:]]
    last = rows[-1]
    run.created = int(float(last.get("OutgoingCall(C)") or 0))
    run.successful = int(float(last.get("SuccessfulCall(C)") or 0))
    run.failed = int(float(last.get("FailedCall(C)") or 0))
    run.peak_concurrent = max(int(float(r.get("CurrentCall") or 0)) for r in rows)
    # When was the last call placed?  Interpolate between the per-second rows around it.
    prev_t, prev_n = 0.0, 0
    for r in rows:
        t = _epoch(r["CurrentTime"]) - _epoch(r["StartTime"])
        n = int(float(r.get("OutgoingCall(C)") or 0))
        if n >= run.planned:
            frac = (run.planned - prev_n) / max(1, n - prev_n)
            run.place_seconds = max(1e-3, prev_t + frac * (t - prev_t))
            break
        prev_t, prev_n = t, n


def _tree(root: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return [root, *root.children(recursive=True)]
    return []


def run_client(cmd: Sequence[str], *, planned: int, csv_path: Path, timeout: float) -> Run:
    """Run one client to the end (killed by PID at ``timeout``): its counters, CPU and RSS."""
    run = Run(planned=planned)
    start = time.monotonic()
    proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=csv_path.parent)
    root = psutil.Process(proc.pid)
    seen: dict[int, psutil.Process] = {}
    cpu_seen: dict[int, float] = {}
    usage = None
    try:
        while True:
            for p in _tree(root):
                seen.setdefault(p.pid, p)
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    cpu_seen[p.pid] = t.user + t.system
                    rss = p.memory_info().rss
                    name = "client" if p.pid == proc.pid else "child"
                    run.peak_rss[name] = max(run.peak_rss.get(name, 0), rss)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() - start > timeout:
                run.killed = True
                for p in reversed(list(seen.values())):
                    with contextlib.suppress(psutil.Error):
                        p.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(_SAMPLE)
    finally:
        # Whatever happened, nothing of this client outlives the step.
        for p in seen.values():
            with contextlib.suppress(psutil.Error):
                if p.pid != proc.pid and p.is_running():
                    p.kill()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    run.wall = time.monotonic() - start
    exact = usage.ru_utime + usage.ru_stime if usage is not None else 0.0
    run.cpu = max(exact, sum(cpu_seen.values()))
    read_stat_csv(csv_path, run)
    return run


class Client:
    """How to start one kind of client for a step."""

    def __init__(self, label: str, target: str, *, agents: int = 0) -> None:
        self.label = label
        self.target = target
        self.agents = agents  # sipha only: 0 = one local agent; None for SIPp
        self.overhead = 0.0

    def command(self, rate: float, calls: int, stat: Path, *, hold: float = 0.0,
                limit: int | None = None) -> list[str]:
        raise NotImplementedError

    def run(self, rate: float, calls: int, *, timeout: float, hold: float = 0.0,
            limit: int | None = None) -> Run:
        with tempfile.TemporaryDirectory(prefix="sipha-lt-") as tmp:
            stat = Path(tmp) / "stat.csv"
            cmd = self.command(rate, calls, stat, hold=hold, limit=limit)
            return run_client(cmd, planned=calls, csv_path=stat, timeout=timeout)


class SippClient(Client):
    def command(self, rate: float, calls: int, stat: Path, *, hold: float = 0.0,
                limit: int | None = None) -> list[str]:
        cmd = ["sipp", "-sn", "uac", self.target, "-i", "127.0.0.1", "-p", str(free_port()),
               "-r", str(rate), "-m", str(calls), "-nostdin", "-trace_stat", "-stf", str(stat),
               "-fd", "1", "-l", str(limit or int(rate * 4) + 100), *h.SIPP_FAST]
        if hold:
            cmd += ["-d", str(int(hold * 1000))]
        return cmd


class SiphaClient(Client):
    def command(self, rate: float, calls: int, stat: Path, *, hold: float = 0.0,
                limit: int | None = None) -> list[str]:
        cmd = [*h.SIPHA, "load", "call", self.target, "--rate", str(rate), "--max-calls",
               str(calls), "--quiet", "--csv", str(stat), "--hold", f"{hold}s",
               # Past the hold time: calls still up when the drain ends are not counted at all.
               "--drain-timeout", f"{hold + 10}s"]
        if limit:
            cmd += ["--max-concurrent", str(limit)]
        if self.agents:
            cmd += ["--agents", str(self.agents)]
        return cmd

    def measure_overhead(self) -> None:
        """CPU of a one-call run: imports, agent start-up, controller; not per call."""
        run = self.run(1.0, 1, timeout=30.0)
        self.overhead = run.cpu


def rising(client: Client, rates: Sequence[float], seconds: float) -> list[Step]:
    print(f"  {client.label}:", flush=True)
    steps: list[Step] = []
    for rate in rates:
        calls = max(1, int(rate * seconds))
        run = client.run(rate, calls, timeout=seconds * 3 + 30)
        step = Step(rate, run, client.overhead)
        steps.append(step)
        print(
            f"    {rate:6.0f} calls/s: {run.successful:6d} ok {step.failed:5d} failed, placed at "
            f"{step.achieved:6.0f}/s, {step.cpu_per_1000:6.3f} CPU s/1000 calls "
            f"{'clean' if step.clean else 'NOT clean'}{' (killed)' if run.killed else ''}",
            flush=True,
        )
        if not step.clean:
            break
        time.sleep(1.0)  # let the uas forget the last calls before the next step
    return steps


def best(steps: Sequence[Step]) -> float:
    clean = [s.rate for s in steps if s.clean]
    return max(clean) if clean else 0.0


def cpu_at(steps: Sequence[Step], rate: float) -> float:
    for s in steps:
        if s.rate == rate and s.clean:
            return s.cpu_per_1000
    return float("nan")


def memory(target: str, calls: int, rate: float, hold: float) -> Run:
    """One sipha agent holding ``calls`` concurrent calls for ``hold`` seconds."""
    client = SiphaClient("sipha memory", target)
    print(f"  sipha, 1 agent, {calls} concurrent calls held {hold:.0f} s "
          f"(placed at {rate:.0f}/s):", flush=True)
    run = client.run(rate, calls, hold=hold, limit=calls + 10,
                     timeout=calls / rate + hold + 60)
    print(f"    peak concurrent {run.peak_concurrent}, {run.successful} ok "
          f"{max(run.failed, calls - run.successful)} failed, peak RSS "
          f"{run.peak_rss.get('client', 0) / 2**20:.1f} MB", flush=True)
    return run


def _ratio(a: float, b: float) -> str:
    return f"{a / b:7.2f}x" if b and a == a and b == b else "      -"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per rate step")
    ap.add_argument("--rates", default="250,500,1000,1500,2000,3000,4000")
    ap.add_argument("--mem-calls", type=int, default=10_000, help="concurrent calls held")
    ap.add_argument("--mem-hold", type=float, default=60.0, help="their hold time, seconds")
    ap.add_argument("--mem-rate", type=float, default=1000.0, help="rate they are placed at")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2 s steps at 200,400 calls/s, 2,000 calls held 10 s")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.rates = 2.0, "200,400"
        args.mem_calls, args.mem_hold, args.mem_rate = 2000, 10.0, 500.0
    rates = [float(r) for r in args.rates.split(",")]
    with h.processes() as procs:
        target = f"127.0.0.1:{h.sipp_uas(procs)}"
        sipp = SippClient("SIPp uac", target)
        one = SiphaClient("sipha, 1 agent", target)
        two = SiphaClient("sipha, 2 agents (--agents 2)", target, agents=2)
        for c in (one, two):
            c.measure_overhead()
        print(f"sipha start-up CPU (subtracted): 1 agent {one.overhead:.2f} s, "
              f"2 agents {two.overhead:.2f} s", flush=True)
        results = {c.label: rising(c, rates, args.seconds) for c in (sipp, one, two)}
        mem = memory(target, args.mem_calls, args.mem_rate, args.mem_hold)
    s_steps, o_steps, t_steps = results.values()
    s_best, o_best, t_best = best(s_steps), best(o_steps), best(t_steps)
    common = min(s_best, o_best, t_best)
    s_cpu, o_cpu, t_cpu = (cpu_at(x, common) for x in (s_steps, o_steps, t_steps))
    print()
    print(f"{'':28} {'SIPp':>9} {'sipha 1':>9} {'sipha 2':>9} {'1/SIPp':>8} {'2/SIPp':>8}")
    print(f"{'highest clean calls/s':28} {s_best:9.0f} {o_best:9.0f} {t_best:9.0f} "
          f"{_ratio(o_best, s_best)} {_ratio(t_best, s_best)}")
    print(f"{f'CPU s/1000 calls @ {common:.0f}/s':28} {s_cpu:9.3f} {o_cpu:9.3f} {t_cpu:9.3f} "
          f"{_ratio(o_cpu, s_cpu)} {_ratio(t_cpu, s_cpu)}")
    rss = mem.peak_rss.get("client", 0) / 2**20
    print(f"{'agent peak RSS':28} {'':9} {rss:8.1f}M   ({mem.peak_concurrent} concurrent calls; "
          f"target < 300 MB)")
    print("targets: sipha 2 agents >= SIPp's clean rate; CPU per call <= 3x SIPp's")
    if rates[-1] in (s_best, o_best, t_best):
        print("note: a client was clean at the top rate; raise --rates to find its limit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
