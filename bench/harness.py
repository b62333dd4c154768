"""Shared benchmark machinery: peers on loopback, SIPp load steps, CPU accounting.

A benchmark compares sipha with a C peer (Kamailio, SIPp) in one run, on the same machine, with
the same SIPp load, and prints both figures and their ratio:

- the highest clean call rate: SIPp's uac at rising rates, each step a fixed number of seconds;
  a step is clean when fewer than 0.1 % of its calls failed by SIPp's own counters;
- CPU seconds per 1,000 calls: user+system time of the system under test (all its processes)
  during one step at a rate both sides sustain, divided by the calls SIPp completed.

Every process started here is killed by PID when the benchmark ends.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from sipha.common.process import free_port, kamailio_modules_dir, wait_sip_options

ROOT = Path(__file__).resolve().parent.parent
SIPHA = [sys.executable, "-m", "sipha"]
# SIPp at its best here, as the developers' guide asks.
SIPP_FAST = ["-max_recv_loops", "10000", "-max_sched_loops", "10000"]


@dataclass
class StepResult:
    rate: float
    calls: int
    successful: int
    failed: int
    cpu_seconds: float
    wall_seconds: float

    @property
    def clean(self) -> bool:
        return self.calls > 0 and self.failed <= self.calls * 0.001 and self.successful > 0

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu_seconds / max(1, self.successful) * 1000


class Procs:
    """Processes started by a benchmark; all killed by PID on exit."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="sipha-bench-"))

    def start(self, cmd: Sequence[str], *, log: str | None = None) -> subprocess.Popen[bytes]:
        out = open(self.tmp / log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, cwd=self.tmp)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                # Kamailio forks children into its process group: take the whole group down.
                with contextlib.suppress(ProcessLookupError):
                    for child in psutil.Process(p.pid).children(recursive=True):
                        with contextlib.suppress(psutil.Error):
                            child.kill()
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                p.wait(timeout=10)
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextlib.contextmanager
def processes() -> Iterator[Procs]:
    procs = Procs()
    try:
        yield procs
    finally:
        procs.close()


def cpu_seconds(pids: Sequence[int]) -> float:
    """user+system CPU of these processes and their children, now."""
    total = 0.0
    for pid in pids:
        try:
            p = psutil.Process(pid)
            for q in [p, *p.children(recursive=True)]:
                t = q.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            continue
    return total


def sipp_uas(procs: Procs, ip: str = "127.0.0.1") -> int:
    port = free_port(ip)
    procs.start(["sipp", "-sn", "uas", "-i", ip, "-p", str(port), "-nostdin", *SIPP_FAST])
    time.sleep(0.3)
    return port


def run_step(
    target: str,
    rate: float,
    seconds: float,
    measure_pids: Sequence[int],
    *,
    extra: Sequence[str] = (),
    scenario: Sequence[str] = ("-sn", "uac"),
) -> StepResult:
    """SIPp's uac (or ``scenario``) against ``target`` at ``rate`` for ``seconds``; SIPp's
    counters decide."""
    calls = max(1, int(rate * seconds))
    with tempfile.TemporaryDirectory(prefix="sipha-step-") as tmp:
        stat = Path(tmp) / "stat.csv"
        port = free_port()
        cmd = [
            "sipp", *scenario, target, "-i", "127.0.0.1", "-p", str(port), "-r", str(rate),
            "-m", str(calls), "-nostdin", "-trace_stat", "-stf", str(stat), "-fd", "1",
            "-l", str(int(rate * 4) + 100), *SIPP_FAST, *extra,
        ]
        before = cpu_seconds(measure_pids)
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
        try:
            proc.wait(timeout=seconds * 3 + 40)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        wall = time.monotonic() - start
        used = cpu_seconds(measure_pids) - before
        row: dict[str, str] = {}
        if stat.exists():
            with stat.open(newline="") as f:
                rows = list(csv.reader(f, delimiter=";"))
            if len(rows) >= 2:
                row = dict(zip(rows[0], rows[-1], strict=False))
        ok = int(float(row.get("SuccessfulCall(C)", "0") or 0))
        failed = int(float(row.get("FailedCall(C)", "0") or 0))
        created = int(float(row.get("TotalCallCreated", "0") or 0))
        # Calls SIPp never got to place count as failed: the system under test held it back.
        failed += max(0, calls - max(created, ok + failed))
        return StepResult(rate, calls, ok, failed, used, wall)


def highest_clean_rate(
    target: str, rates: Sequence[float], seconds: float, pids: Sequence[int],
    sipp: Sequence[str] = (),
    scenario: Sequence[str] = ("-sn", "uac"),
) -> tuple[float, list[StepResult]]:
    """Step through ``rates``; the highest clean one (0 if none), and every step's result."""
    best = 0.0
    steps: list[StepResult] = []
    for rate in rates:
        step = run_step(target, rate, seconds, pids, extra=sipp, scenario=scenario)
        steps.append(step)
        print(
            f"    {rate:7.0f} calls/s: {step.successful:6d} ok {step.failed:5d} failed, "
            f"{step.cpu_per_1000:6.3f} CPU s/1000 calls {'clean' if step.clean else 'NOT clean'}",
            flush=True,
        )
        if not step.clean:
            break
        best = rate
        time.sleep(1.0)  # let the last calls' timers run out before the next step
    return best, steps


def render(template: str, **values: object) -> str:
    """A Kamailio config from its template; ``{modules}`` is this machine's module path."""
    modules = kamailio_modules_dir()
    if modules is None:
        raise SystemExit("kamailio is not installed (make deps installs it)")
    return (Path(__file__).parent / template).read_text().format(modules=modules, **values)


def start_kamailio(procs: Procs, cfg_text: str, *, ip: str, port: int) -> subprocess.Popen[bytes]:
    cfg = procs.tmp / f"kamailio-{port}.cfg"
    cfg.write_text(cfg_text)
    proc = procs.start(
        ["kamailio", "-f", str(cfg), "-m", "2048", "-M", "64", "-DD", "-E", "-Y", str(procs.tmp),
         "-w", str(procs.tmp)],
        log=f"kamailio-{port}.log",
    )
    try:
        wait_sip_options(ip, port, timeout=15)
    except TimeoutError:
        print((procs.tmp / f"kamailio-{port}.log").read_text()[-3000:], file=sys.stderr)
        raise
    return proc


@dataclass
class System:
    """A system under test, up: its name, the address SIPp calls, the PIDs whose CPU counts."""

    label: str
    target: str
    pids: list[int]
    sipp: tuple[str, ...] = ()
    """Extra SIPp uac arguments (``-s USER``, ...)."""
    scenario: tuple[str, ...] = ("-sn", "uac")
    """The uac's scenario: SIPp's built-in, or ``("-sf", FILE)``."""


SystemFactory = Callable[[], contextlib.AbstractContextManager[System]]


def _median(xs: Sequence[float]) -> float:
    ys = sorted(xs)
    n = len(ys)
    if not n:
        return float("nan")
    return ys[n // 2] if n % 2 else (ys[n // 2 - 1] + ys[n // 2]) / 2


def _ratio(a: float, b: float) -> str:
    return f"{a / b:7.2f}x" if b else "      -"


def compare_main(
    doc: str,
    *,
    rates: str,
    cpu_rate: float,
    target: str,
    ours: SystemFactory,
    peer: SystemFactory,
    peer_name: str = "Kamailio",
    also: SystemFactory | None = None,
) -> int:
    """The command line and the side-by-side table every peer benchmark prints.

    Both systems are started first and stay up. The CPU steps come first and alternate
    (sipha, peer, sipha, peer, ...): this machine's speed drifts over minutes, and two
    measurements taken far apart compare the drift as much as the systems. The median of each
    side's repeats is compared; a step counts when under 1 % of its calls failed (Kamailio's
    serial forking gives SIPp a few stray 2xx under load, which SIPp counts as failures). Then
    each side's highest clean rate, one after the other (an overloaded step leaves a backlog
    that would be billed to the next step, hence last). ``also`` (with ``--also``) is a third
    system in the same alternation, e.g. sipha's pure-Python build next to its compiled one.
    """
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per rate step")
    ap.add_argument("--rates", default=rates, help="comma-separated call rates to step through")
    ap.add_argument("--cpu-rate", type=float, default=cpu_rate, help="rate of the CPU measurement")
    ap.add_argument("--cpu-repeats", type=int, default=3,
                    help="alternating CPU steps per side (median compared; default 3)")
    if also is not None:
        ap.add_argument("--also", action="store_true",
                        help="measure the third system too (sipha's pure-Python build)")
    args = ap.parse_args()
    steps = [float(r) for r in args.rates.split(",")]
    with contextlib.ExitStack() as stack:
        systems = [stack.enter_context(ours()), stack.enter_context(peer())]
        if also is not None and args.also:
            systems.append(stack.enter_context(also()))
        cpu: dict[str, list[float]] = {s.label: [] for s in systems}
        print(f"CPU steps at {args.cpu_rate:.0f} calls/s, alternating:", flush=True)
        for _ in range(args.cpu_repeats):
            for s in systems:
                step = run_step(s.target, args.cpu_rate, args.seconds, s.pids, extra=s.sipp,
                                scenario=s.scenario)
                usable = step.successful > 0 and step.failed <= step.calls * 0.01
                print(f"  {s.label}: {step.successful} ok {step.failed} failed, "
                      f"{step.cpu_per_1000:.3f} CPU s/1000 calls"
                      + ("" if usable else " (not counted)"), flush=True)
                if usable:
                    cpu[s.label].append(step.cpu_per_1000)
                time.sleep(1.0)
        best: dict[str, float] = {}
        for s in systems:
            print(f"  {s.label}, rising rates:", flush=True)
            best[s.label], _ = highest_clean_rate(s.target, steps, args.seconds, s.pids,
                                                  s.sipp, s.scenario)
            time.sleep(2.0)
    ours_sys, peer_sys = systems[:2]
    for extra in systems[2:]:
        e_cpu = _median(cpu[extra.label])
        print(f"{extra.label}: CPU s per 1000 calls {e_cpu:.3f} (median), "
              f"{_ratio(e_cpu, _median(cpu[ours_sys.label]))} of {ours_sys.label}'s; "
              f"highest clean calls/s {best[extra.label]:.0f}")
    s_cpu, k_cpu = _median(cpu[ours_sys.label]), _median(cpu[peer_sys.label])
    s_best, k_best = best[ours_sys.label], best[peer_sys.label]

    def span(xs: list[float]) -> str:
        return f"{min(xs):.3f}-{max(xs):.3f}" if xs else "-"

    print()
    print(f"{'':24} {'sipha':>10} {peer_name:>10} {'ratio':>8}")
    print(f"{'highest clean calls/s':24} {s_best:10.0f} {k_best:10.0f} {_ratio(s_best, k_best)}")
    print(
        f"{'CPU s per 1000 calls':24} {s_cpu:10.3f} {k_cpu:10.3f} {_ratio(s_cpu, k_cpu)}"
        f"   (median at {args.cpu_rate:.0f} calls/s; target {target})"
    )
    print(f"{'  range of the repeats':24} {span(cpu[ours_sys.label]):>10} "
          f"{span(cpu[peer_sys.label]):>10}")
    return 0
