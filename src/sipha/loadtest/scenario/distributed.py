"""``sipha load scenario FILE.xml TARGET --agents K``: one scenario over K agent processes
(or, with ``--expect N --bind HOST:PORT --keys DIR``, over N agents started elsewhere).

The command checks the scenario, the injection files and every agent's share of them here,
before any agent starts; then the load tester's controller
(:func:`~sipha.loadtest.api.run_distributed`) ships them to K local agent processes over
CurveZMQ (keys made for the run) and merges what they report: the per-second rows as any
distributed run, and at the end each agent's per-step statistics
(:mod:`~sipha.loadtest.scenario.wire`), merged exactly into one SIPp screen and, with
``--csv``/``--trace-counts``, one final row of SIPp's files.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import msgspec

from sipha.common.loop import run as run_loop
from sipha.loadtest.api import Controller, RunResult, run_distributed
from sipha.loadtest.controller import AgentState
from sipha.loadtest.curve import load_controller_keys
from sipha.loadtest.options import ScenarioOptions
from sipha.loadtest.phases import AgentPhase
from sipha.loadtest.protocol import Plan
from sipha.loadtest.scenario.agent_run import load_shipped
from sipha.loadtest.scenario.builtin import builtin_text
from sipha.loadtest.scenario.context import RunConfig
from sipha.loadtest.scenario.errors import ScenarioError
from sipha.loadtest.scenario.live import LiveScreen
from sipha.loadtest.scenario.model import Scenario
from sipha.loadtest.scenario.percall import SocketOptions
from sipha.loadtest.scenario.runner import RunBounds
from sipha.loadtest.scenario.stat_files import TraceCountsWriter, TraceStatWriter
from sipha.loadtest.scenario.stats import ScenarioStats, StepStats, format_screen
from sipha.loadtest.scenario.wire import (
    ShippedFile,
    XmlRunOptions,
    XmlScenario,
    check_size,
    from_snapshot,
    share_xml,
)
from sipha.loadtest.stats import IntervalStats

__all__ = ["build_xml", "merge_agents", "run_on_agents"]

# What runs only in one process: refused with --agents, with the reason.
_LOCAL_ONLY = {
    "listen": "a server scenario answers on one address: run it without --agents",
    "oocsf": "--oocsf is not shipped to agents",
    "allow_exec": "agents never run <exec command=>: a controller runs no shell on them",
    "trace_msg": "--trace-msg is written by one process: run without --agents",
    "trace_err": "--trace-err is written by one process: run without --agents",
    "trace_rtt": "--trace-rtt is written by one process: run without --agents",
}


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read: {exc.strerror}", file=path) from None


def build_xml(args: argparse.Namespace, scenario: Scenario, config: RunConfig,
              sockets: SocketOptions) -> XmlScenario:
    """The files and options every agent gets.  Raises :class:`ScenarioError` for an
    unreadable file, ``ValueError`` for files too big to ship."""
    data = builtin_text(args.sn) if args.sn else _read(scenario.file)
    xml = XmlScenario(
        scenario=ShippedFile(name=scenario.file, data=data),
        injections=[ShippedFile(name=path, data=_read(path)) for path in args.inf],
        infindex=[(path, int(field)) for path, field in args.infindex],
        run=XmlRunOptions(
            local_ip=config.local_ip, local_port=config.local_port,
            transport=config.transport, service=config.service, media_ip=config.media_ip,
            media_port=config.media_port, users=config.users, pause_ms=config.pause_ms,
            recv_timeout=config.recv_timeout, max_retrans=config.max_retrans,
            max_retrans_invite=config.max_retrans_invite, base_cseq=config.base_cseq,
            auth_username=config.auth_username, auth_password=config.auth_password,
            behaviors=sorted(config.behaviors), auto_answer=config.auto_answer,
            cid_str=config.cid_str, rate_period=args.rate_period,
            rate_increase=args.rate_increase, rate_interval=args.rate_interval,
            rate_max=args.rate_max, quit_at_max=not args.no_rate_quit, timeout=args.timeout,
            per_call=sockets.per_call, local_ips=list(sockets.local_ips),
            max_reconnect=sockets.max_reconnect, reconnect_sleep=sockets.reconnect_sleep,
            reconnect_close=sockets.reconnect_close),
    )
    check_size(xml)
    return xml


def merge_agents(scenario: Scenario,
                 agents: Mapping[str, AgentState]) -> tuple[ScenarioStats, list[str]]:
    """The agents' per-step statistics merged (each agent's latest: its Done's, or its last
    report's), and what could not be merged or is partial (an agent lost, statistics that
    are not this scenario's), one line each."""
    merged = ScenarioStats(steps=[StepStats() for _ in scenario.steps])
    problems: list[str] = []
    for agent_id, state in sorted(agents.items()):
        if state.phase is AgentPhase.LOST:
            problems.append(f"agent {agent_id} lost: its statistics up to second "
                            f"{state.last_second} only")
        if state.scenario is None:
            problems.append(f"agent {agent_id}: no per-step statistics ({state.phase.value})")
            continue
        try:
            merged.merge(from_snapshot(state.scenario, scenario))
        except ValueError as exc:
            problems.append(f"agent {agent_id}: statistics refused: {exc}")
    return merged, problems


class _AgentsScreen:
    """The live screen of a run over agents (a LiveView of the controller): each merged
    second, the agents' latest per-step statistics merged, as SIPp's screen."""

    def __init__(self, scenario: Scenario, screen: LiveScreen) -> None:
        self.scenario = scenario
        self.screen = screen
        # Not "agents": a view with an agents() method is shown the agents by the controller.
        self.states: Mapping[str, AgentState] = {}

    def second(self, second: int, stats: IntervalStats, totals: IntervalStats,
               target_rate: float) -> None:
        merged, _ = merge_agents(self.scenario, self.states)
        self.screen.update(merged, second + 1.0)

    def event(self, text: str) -> None:
        pass  # the agents' comings and goings are in the final lines

    def close(self) -> None:
        pass


def _plan(args: argparse.Namespace, xml: XmlScenario, config: RunConfig,
          bounds: RunBounds) -> Plan:
    return Plan(
        run_id="", scenario="xml", target_host=config.remote_ip,
        target_port=config.remote_port, transport="tcp" if config.transport == "TCP" else "udp",
        rate=args.rate / args.rate_period, duration=bounds.duration, start_at=time.time(),
        seed=args.seed or int(time.time() * 1000) % 2**31, max_calls=bounds.max_calls,
        max_concurrent=bounds.limit,
        options=ScenarioOptions(local_host=config.local_ip, drain_timeout=bounds.drain_timeout),
        xml=xml)


def run_on_agents(args: argparse.Namespace, scenario: Scenario, config: RunConfig,
                  bounds: RunBounds, sockets: SocketOptions) -> int:
    """Run on ``args.agents`` local agent processes; the exit code as a local run's."""
    for name, why in _LOCAL_ONLY.items():
        if getattr(args, name):
            print(f"sipha load scenario: --agents: {why}", file=sys.stderr)
            return 2
    if not scenario.client:
        print("sipha load scenario: --agents runs client scenarios (a server scenario "
              "answers on one address)", file=sys.stderr)
        return 2
    try:
        xml = build_xml(args, scenario, config, sockets)
        for index in range(args.agents):  # every share is checked before any agent starts
            try:
                load_shipped(share_xml(xml, agents=args.agents, index=index))
            except ValueError as exc:
                raise ScenarioError(f"agent {index + 1} of {args.agents}: {exc}",
                                    file=scenario.file) from None
        plan = _plan(args, xml, config, bounds)
    except (ScenarioError, ValueError, msgspec.ValidationError) as exc:
        print(f"sipha load scenario: {exc}", file=sys.stderr)
        return 2

    live: _AgentsScreen | None = None
    if not args.quiet and sys.stdout.isatty():
        count = args.agents or args.expect
        live = _AgentsScreen(scenario, LiveScreen(scenario, pause_ms=config.pause_ms,
                                                  target=f"{plan.target} ({count} agents)"))

    def attach(controller: Controller) -> None:
        if live is not None:
            live.states = controller.agents

    async def go() -> RunResult:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        if args.expect:  # agents started elsewhere join this controller
            keys = load_controller_keys(args.keys) if args.keys else None
            controller = Controller(plan, expect_agents=args.expect, bind=args.bind,
                                    join_timeout=args.join_timeout, keys=keys,
                                    jsonl_path=args.jsonl, view=live)
            attach(controller)
            stopping = loop.create_task(stop.wait())
            stopping.add_done_callback(lambda _: controller.stop())
            try:
                return await controller.run()
            finally:
                stopping.cancel()
        return await run_distributed(plan, agents=args.agents, stop=stop,
                                     agent_log=args.agent_log, jsonl_path=args.jsonl,
                                     view=live, on_controller=attach)

    started = time.time()
    if live is not None:
        live.screen.start()
    try:
        result = run_loop(go())
    except (OSError, TimeoutError, ValueError) as exc:  # ValueError: a bad key folder
        print(f"sipha load scenario: {exc}", file=sys.stderr)
        return 1
    finally:
        if live is not None:
            live.screen.stop()
    stats, problems = merge_agents(scenario, result.agents)
    _write_files(args, scenario, stats, started)
    screen = format_screen(scenario, stats, pause_ms=config.pause_ms)
    if not args.quiet:
        print(screen)
    print(f"agents {len(result.agents)}: created {stats.created} successful {stats.successful} "
          f"failed {stats.failed_calls}" + (f" {dict(stats.failed)}" if stats.failed else ""))
    for line in problems:
        print(f"sipha load scenario: {line}", file=sys.stderr)
    if problems:
        return 2  # half a run's statistics: no verdict
    return 0 if stats.failed_calls == 0 else 3


def _write_files(args: argparse.Namespace, scenario: Scenario, stats: ScenarioStats,
                 started: float) -> None:
    # One final row: the agents' statistics are merged once, at the end.
    now = time.time()
    if args.csv:
        with open(args.csv, "w", encoding="utf-8") as f:
            TraceStatWriter(f, scenario, start_wall=started,
                            target_rate=args.rate / args.rate_period).write(stats, now)
    if args.trace_counts:
        with open(args.trace_counts, "w", encoding="utf-8") as f:
            TraceCountsWriter(f, scenario, start_wall=started).write(stats, now)
    if args.trace_screen:
        Path(args.trace_screen).write_text(format_screen(scenario, stats,
                                                         pause_ms=args.pause * 1000.0) + "\n")
