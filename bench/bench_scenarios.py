"""Scenario-engine benchmark: SIPp's own ``uac.xml`` run by SIPp and by sipha, side by side.

SIPp's built-in client scenario, dumped as XML (``sipp -sd uac``), is run, at the same rising
rates (each step ``--seconds`` long), against one SIPp ``uas``:

- by SIPp: ``sipp -sf uac.xml`` (tuned: ``-max_recv_loops 10000 -max_sched_loops 10000``);
- by sipha, 1 agent: ``sipha load scenario uac.xml TARGET`` (one process);
- by sipha, 2 agents: ``sipha load scenario uac.xml TARGET --agents 2`` (a controller that
  ships the file to 2 agent processes, statistics merged).

A step is clean when fewer than 0.1 % of its calls failed and the client kept the rate (see
``bench_loadtest.py``, whose measuring this reuses: CPU of the whole client process tree,
sipha's start-up CPU measured on a one-call run and subtracted).  SIPp and sipha with 1 agent
write SIPp's ``-trace_stat`` file every second; with 2 agents the controller's per-second
JSON lines give when the last call was placed.

Run: ``.venv/bin/python bench/bench_scenarios.py [--quick] [--seconds 3] [--rates 100,200]``
Every process started here is killed by PID at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import harness as h
from bench_loadtest import Client, Run, _ratio, best, cpu_at, rising, run_client
from sipha.common.process import free_port


def dump_uac(folder: Path) -> Path:
    """SIPp's own uac scenario as SIPp writes it (``sipp -sd uac``; it exits 99 after)."""
    path = folder / "uac.xml"
    out = subprocess.run(["sipp", "-sd", "uac"], capture_output=True, timeout=30, check=False)
    path.write_bytes(out.stdout)
    if b"<scenario" not in out.stdout:
        raise SystemExit(f"sipp -sd uac wrote no scenario: {out.stderr[-300:]!r}")
    return path


class SippXml(Client):
    def __init__(self, label: str, target: str, xml: Path) -> None:
        super().__init__(label, target)
        self.xml = xml

    def command(self, rate: float, calls: int, stat: Path, *, hold: float = 0.0,
                limit: int | None = None) -> list[str]:
        return ["sipp", "-sf", str(self.xml), self.target, "-i", "127.0.0.1", "-p",
                str(free_port()), "-r", str(rate), "-m", str(calls), "-nostdin", "-trace_stat",
                "-stf", str(stat), "-fd", "1", "-l", str(limit or int(rate * 4) + 100),
                *h.SIPP_FAST]


def _read_jsonl(path: Path, run: Run, rate: float) -> None:
    """The controller's per-second rows: calls placed by the end of each second.  Within the
    second of the last call, calls are taken as placed at ``rate`` (or faster, if that second
    holds more): a few calls spilling into a new second do not count as a whole second."""
    if not path.exists():
        return
    placed = 0
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        if rec.get("type") != "interval":
            continue
        before = placed
        placed += rec["calls_attempted"]
        if placed >= run.planned > before:
            frac = (run.planned - before) / max(1.0, rate, placed - before)
            run.place_seconds = max(1e-3, rec["second"] + frac)
        run.peak_concurrent = max(run.peak_concurrent, rec.get("concurrent_calls", 0))


class SiphaXml(SippXml):
    def __init__(self, label: str, target: str, xml: Path, *, agents: int = 0) -> None:
        super().__init__(label, target, xml)
        self.agents = agents

    def command(self, rate: float, calls: int, stat: Path, *, hold: float = 0.0,
                limit: int | None = None) -> list[str]:
        cmd = [*h.SIPHA, "load", "scenario", str(self.xml), self.target, "-r", str(rate),
               "-m", str(calls), "-q", "--csv", str(stat), "-l",
               str(limit or int(rate * 4) + 100), "--drain-timeout", "10s"]
        if self.agents:
            cmd += ["--agents", str(self.agents), "--jsonl", str(stat.with_suffix(".jsonl"))]
        return cmd

    def run(self, rate: float, calls: int, *, timeout: float, hold: float = 0.0,
            limit: int | None = None) -> Run:
        with tempfile.TemporaryDirectory(prefix="sipha-sc-") as tmp:
            stat = Path(tmp) / "stat.csv"
            cmd = self.command(rate, calls, stat, hold=hold, limit=limit)
            run = run_client(cmd, planned=calls, csv_path=stat, timeout=timeout)
            if self.agents:  # one final merged row: when the calls were placed is per second
                run.place_seconds = float("inf")
                _read_jsonl(stat.with_suffix(".jsonl"), run, rate)
            return run

    def measure_overhead(self) -> None:
        self.overhead = self.run(1.0, 1, timeout=30.0).cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per rate step")
    ap.add_argument("--rates", default="100,200,400,600,800,1000,1500,2000")
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 s steps at 100,200")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.rates = 2.0, "100,200"
    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="sipha-bench-sc-") as tmp, h.processes() as procs:
        xml = dump_uac(Path(tmp))
        target = f"127.0.0.1:{h.sipp_uas(procs)}"
        sipp = SippXml("SIPp -sf uac.xml", target, xml)
        one = SiphaXml("sipha load scenario uac.xml, 1 agent", target, xml)
        two = SiphaXml("sipha load scenario uac.xml --agents 2", target, xml, agents=2)
        for c in (one, two):
            c.measure_overhead()
        print(f"sipha start-up CPU (subtracted): 1 agent {one.overhead:.2f} s, "
              f"2 agents {two.overhead:.2f} s", flush=True)
        results = {c.label: rising(c, rates, args.seconds) for c in (sipp, one, two)}
    s_steps, o_steps, t_steps = results.values()
    s_best, o_best, t_best = best(s_steps), best(o_steps), best(t_steps)
    common = min(s_best, o_best, t_best)
    s_cpu, o_cpu, t_cpu = (cpu_at(x, common) for x in (s_steps, o_steps, t_steps))
    print()
    print(f"{'uac.xml':28} {'SIPp':>9} {'sipha 1':>9} {'sipha 2':>9} {'1/SIPp':>8} {'2/SIPp':>8}")
    print(f"{'highest clean calls/s':28} {s_best:9.0f} {o_best:9.0f} {t_best:9.0f} "
          f"{_ratio(o_best, s_best)} {_ratio(t_best, s_best)}")
    print(f"{f'CPU s/1000 calls @ {common:.0f}/s':28} {s_cpu:9.3f} {o_cpu:9.3f} {t_cpu:9.3f} "
          f"{_ratio(o_cpu, s_cpu)} {_ratio(t_cpu, s_cpu)}")
    print("targets: sipha 2 agents >= SIPp's clean rate; CPU per call (1 agent) <= 3x SIPp's")
    if rates[-1] in (s_best, o_best, t_best):
        print("note: a client was clean at the top rate; raise --rates to find its limit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
