"""The programmatic face of the load tester (the CLI and the test bed use it).

* :func:`run_local` -- one in-process agent, outputs written as the run goes.
* :func:`run_distributed` -- an in-process :class:`~sipha.loadtest.controller.Controller`
  plus ``agents`` local agent processes (``sipha load agent``), killed by PID at the end.
  With ``agents=0`` it waits for remote agents (``expect_agents``) instead.

Both return a :class:`~sipha.loadtest.controller.RunResult` with the merged per-second
:class:`~sipha.loadtest.stats.RunStats`; with ``results_dir`` they write ``stats.csv`` (SIPp
``-trace_stat`` columns), ``stats.jsonl`` and ``events.jsonl`` there.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from sipha.common.process import terminate
from sipha.loadtest.controller import AgentState, Controller, RunResult
from sipha.loadtest.curve import create_keys, load_controller_keys
from sipha.loadtest.phases import AgentPhase
from sipha.loadtest.protocol import Plan
from sipha.loadtest.results import ResultsSink
from sipha.loadtest.runner import AgentRunner
from sipha.loadtest.stats import IntervalStats
from sipha.loadtest.uac import planned_rate
from sipha.loadtest.view import LiveView

__all__ = ["Controller", "RunResult", "agent_command", "run_distributed", "run_local"]


async def run_local(
    plan: Plan,
    *,
    results_dir: str | Path | None = None,
    csv_path: str | Path | None = None,
    jsonl_path: str | Path | None = None,
    view: LiveView | None = None,
    stop: asyncio.Event | None = None,
    start_delay: float = 0.2,
    on_runner: Callable[[AgentRunner], None] | None = None,
) -> RunResult:
    """Run ``plan`` in this process (its ``start_at`` is reset to now + ``start_delay``).

    Setting ``stop`` ends the run early (in-flight calls drain). ``on_runner`` receives the
    runner before it starts (a live page changes its rate through it). Raises ``OSError`` if
    the local socket cannot be bound.
    """
    start_at = time.time() + start_delay
    plan = msgspec.structs.replace(plan, start_at=start_at)
    out = Path(results_dir) if results_dir is not None else None
    sink = ResultsSink(
        start_time=start_at,
        csv_path=csv_path or (out / "stats.csv" if out else None),
        jsonl_path=jsonl_path or (out / "stats.jsonl" if out else None),
        events_path=out / "events.jsonl" if out else None,
        view=view,
    )

    def on_second(second: int, stats: IntervalStats) -> None:
        sink.add("local", second, stats)
        rate = planned_rate(plan, second)
        sink.write(second, target_rate=rate and runner.target_rate(second))

    runner = AgentRunner(plan, plan.options, on_second=on_second)
    if on_runner is not None:
        on_runner(runner)
    state = AgentState("local", "localhost", os.getpid(), b"local", time.time(),
                       phase=AgentPhase.RUNNING)
    watcher: asyncio.Task[None] | None = None
    if stop is not None:

        async def watch() -> None:
            await stop.wait()
            runner.stop()

        watcher = asyncio.get_running_loop().create_task(watch())
    try:
        sink.event("run-started", at=time.time(), agents=1, start_at=start_at)
        totals = await runner.run()
        state.totals = totals
        state.phase = AgentPhase.DONE
        sink.event("run-finished", at=time.time(), done=["local"], lost=[])
    finally:
        if watcher is not None:
            watcher.cancel()
        seconds = sink.run.seconds()
        duration = float(seconds[-1] + 1) if seconds else 0.0
        sink.close(duration=duration)
    return RunResult(run=sink.run, agents={"local": state}, events=sink.events,
                     start_time=start_at, duration=duration)


def agent_command(controller: str, agent_id: str, *, keys: str | Path | None = None,
                  key: str | None = None) -> list[str]:
    """The command line of one local agent process (``keys``: its CurveZMQ key folder,
    ``key``: its key pair's name there)."""
    argv = [sys.executable, "-m", "sipha.cli", "load", "agent", "--controller", controller,
            "--id", agent_id]
    if keys is not None:
        argv += ["--keys", str(keys)] + (["--key", key] if key else [])
    return argv


def _spawn_agents(
    controller: str, agents: int, agent_log: str | Path | None, keys: Path
) -> list[subprocess.Popen[bytes]]:
    procs: list[subprocess.Popen[bytes]] = []
    for i in range(agents):
        name = f"agent-{i + 1}"
        argv = agent_command(controller, name, keys=keys, key=name)
        if agent_log is not None:
            with open(agent_log, "ab") as log_file:
                proc = subprocess.Popen(argv, stdout=log_file, stderr=log_file)
        else:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
    return procs


async def run_distributed(
    plan: Plan,
    *,
    agents: int,
    expect_agents: int | None = None,
    bind: str = "127.0.0.1:0",
    results_dir: str | Path | None = None,
    csv_path: str | Path | None = None,
    jsonl_path: str | Path | None = None,
    view: LiveView | None = None,
    join_timeout: float = 30.0,
    heartbeat_timeout: float = 3.5,
    stop: asyncio.Event | None = None,
    agent_log: str | Path | None = None,
    keys_dir: str | Path | None = None,
) -> RunResult:
    """Run ``plan`` with a controller here and ``agents`` agent processes on this host.

    ``expect_agents`` (default ``agents``) may exceed ``agents`` when remote agents join too.
    Agent processes are killed by PID when the run ends, whatever happened.  The control
    plane is CurveZMQ: with ``keys_dir`` (from ``sipha load keys``, holding agent-1 ..
    agent-K for the local agents) its keys, else keys made for this run in a private
    temporary folder removed at the end (then only the local agents can join).
    """
    with tempfile.TemporaryDirectory(prefix="sipha-keys-") as scratch:
        if keys_dir is None:
            keys_dir = Path(scratch)
            create_keys(keys_dir, [f"agent-{i + 1}" for i in range(agents)])
        return await _run_distributed(
            plan, agents=agents, expect_agents=expect_agents, bind=bind,
            results_dir=results_dir, csv_path=csv_path, jsonl_path=jsonl_path, view=view,
            join_timeout=join_timeout, heartbeat_timeout=heartbeat_timeout, stop=stop,
            agent_log=agent_log, keys_dir=Path(keys_dir),
        )


async def _run_distributed(
    plan: Plan,
    *,
    agents: int,
    expect_agents: int | None,
    bind: str,
    results_dir: str | Path | None,
    csv_path: str | Path | None,
    jsonl_path: str | Path | None,
    view: LiveView | None,
    join_timeout: float,
    heartbeat_timeout: float,
    stop: asyncio.Event | None,
    agent_log: str | Path | None,
    keys_dir: Path,
) -> RunResult:
    controller = Controller(
        plan,
        expect_agents=expect_agents or agents,
        bind=bind,
        results_dir=results_dir,
        csv_path=csv_path,
        jsonl_path=jsonl_path,
        view=view,
        join_timeout=join_timeout,
        heartbeat_timeout=heartbeat_timeout,
        keys=load_controller_keys(keys_dir),
    )
    port = controller.bind()
    host = bind.rpartition(":")[0].strip("[]") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    procs: list[subprocess.Popen[bytes]] = []
    watcher: asyncio.Task[None] | None = None
    try:
        procs = _spawn_agents(f"{host}:{port}", agents, agent_log, keys_dir)
        if stop is not None:

            async def watch() -> None:
                await stop.wait()
                controller.stop()

            watcher = asyncio.get_running_loop().create_task(watch())
        controller.agent_pids = {f"agent-{i + 1}": p.pid for i, p in enumerate(procs)}
        return await controller.run()
    finally:
        if watcher is not None:
            watcher.cancel()
        for proc in procs:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(terminate, proc, 5.0)
