"""Shared pieces of the scenario tests: a virtual-time peer and SIPp's -trace_counts reader."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from sipha.loadtest.scenario.context import RunConfig
from sipha.loadtest.scenario.engine import ScenarioEngine
from sipha.loadtest.scenario.injection import InjectionFile
from sipha.loadtest.scenario.loader import load_scenario_text
from sipha.loadtest.scenario.model import Scenario
from tests.sipp import FAST, SIPP

A = ("127.0.0.1", 5061)
B = ("127.0.0.1", 5062)


def engine(xml: str, *, port: int = 5061, remote: int = 5062, seed: int = 1,
           files: list[InjectionFile] | None = None, **config: object) -> ScenarioEngine:
    scenario = load_scenario_text(xml, file="test.xml")
    cfg = RunConfig(local_port=port, remote_port=remote, pid=7, **config)  # type: ignore[arg-type]
    return ScenarioEngine(scenario, cfg, rng=random.Random(seed), files=files)


def scenario(xml: str) -> Scenario:
    return load_scenario_text(xml, file="test.xml")


def pump(a: ScenarioEngine, b: ScenarioEngine, *, until: float, step: float = 0.01,
         start: float = 0.0) -> float:
    """Run two engines against each other on virtual time; messages arrive instantly."""
    now = start
    while now <= until:
        a.advance(now)
        b.advance(now)
        for _ in range(10):
            moved = False
            for o in a.take_outgoing():
                b.receive(o.data, A, now)
                moved = True
            for o in b.take_outgoing():
                a.receive(o.data, B, now)
                moved = True
            if not moved:
                break
        now = round(now + step, 6)
    return now


def sipp_counts(folder: Path) -> dict[str, int]:
    """The last row of the ``*_counts.csv`` SIPp's -trace_counts wrote in ``folder``."""
    files = sorted(folder.glob("*counts.csv"))
    assert files, f"SIPp wrote no counts file in {folder}"
    with files[0].open(newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    return {k: int(v) for k, v in zip(rows[0], rows[-1], strict=False)
            if k and "_" in k and v.isdigit()}


def start_sipp(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    """SIPp in ``cwd`` (its -trace_counts and -trace_stat files land there); stop it with
    :func:`stop_sipp`, by PID, in a ``finally``."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([SIPP, *args, "-nostdin", "-trace_counts", "-trace_stat", "-fd", "1",
                             *FAST],
                            cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_sipp(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def counts_when(folder: Path, column: str, value: int, timeout: float) -> dict[str, int]:
    """SIPp's counts once ``column`` reaches ``value`` (it writes them once a second)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            counts = sipp_counts(folder)
        except (AssertionError, ValueError, IndexError):
            counts = {}
        if counts.get(column) == value or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)
