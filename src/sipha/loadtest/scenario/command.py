"""``sipha load scenario`` once its arguments are parsed (:mod:`.cli`): load and check the
scenario and injection files, run, write the statistics files, print SIPp's screen."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from typing import TextIO

from sipha.common.loop import run as run_loop
from sipha.loadtest.scenario.builtin import builtin_text
from sipha.loadtest.scenario.check import check_injections
from sipha.loadtest.scenario.context import RunConfig, parse_behaviors
from sipha.loadtest.scenario.engine import ScenarioEngine
from sipha.loadtest.scenario.errors import ScenarioError
from sipha.loadtest.scenario.injection import InjectionFile, load_injection
from sipha.loadtest.scenario.live import LiveScreen
from sipha.loadtest.scenario.loader import load_scenario, load_scenario_text
from sipha.loadtest.scenario.model import Scenario
from sipha.loadtest.scenario.percall import SocketOptions
from sipha.loadtest.scenario.runner import RunBounds, run_scenario
from sipha.loadtest.scenario.schedule import RateSchedule
from sipha.loadtest.scenario.stat_files import TraceCountsWriter, TraceStatWriter
from sipha.loadtest.scenario.stats import format_screen

__all__ = ["run_command"]


def _hostport(text: str, default_port: int = 5060) -> tuple[str, int]:
    text = text.removeprefix("sip:")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, sep, port = text.rpartition(":")
        if not sep:
            host, port = text, ""
    if port and not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected HOST[:PORT]")
    return host, int(port) if port else default_port


def _scenario(args: argparse.Namespace) -> tuple[Scenario, list[str]]:
    operands = list(args.operands)
    if args.sn:
        name = f"<built-in {args.sn}>"
        scenario = load_scenario_text(builtin_text(args.sn), file=name,
                                      allow_exec=args.allow_exec)
    else:
        if not operands:
            raise ScenarioError("give a scenario FILE.xml or --sn NAME", file="sipha")
        scenario = load_scenario(operands.pop(0), allow_exec=args.allow_exec)
    return scenario, operands


def _files(args: argparse.Namespace) -> list[InjectionFile]:
    files = [load_injection(path) for path in args.inf]
    by_name = {f.name: f for f in files}
    for path, field_no in args.infindex:
        if path not in by_name:
            raise ScenarioError("--infindex names a file not given with --inf", file=path)
        if not field_no.isdigit():
            raise ScenarioError(f"--infindex field {field_no!r} is not a number", file=path)
        by_name[path].build_index(int(field_no))
    return files


def _writers(args: argparse.Namespace,
             scenario: Scenario) -> list[TraceStatWriter | TraceCountsWriter]:
    now = time.time()
    writers: list[TraceStatWriter | TraceCountsWriter] = []
    if args.csv:
        writers.append(TraceStatWriter(open(args.csv, "w", encoding="utf-8"),  # noqa: SIM115
                                       scenario, start_wall=now,
                                       target_rate=args.rate / args.rate_period))
    if args.trace_counts:
        writers.append(TraceCountsWriter(
            open(args.trace_counts, "w", encoding="utf-8"),  # noqa: SIM115
            scenario, start_wall=now))
    return writers


def run_command(args: argparse.Namespace) -> int:
    try:
        scenario, operands = _scenario(args)
        ooc = load_scenario(args.oocsf, allow_exec=args.allow_exec) if args.oocsf else None
        if ooc is not None and ooc.client:
            raise ScenarioError("an out-of-call scenario must start with a <recv>",
                                file=args.oocsf, line=ooc.steps[0].where.line,
                                element="send")
        files = _files(args)
        check_injections(scenario, files, users=args.users)
    except ScenarioError as exc:
        print(f"sipha load scenario: {exc}", file=sys.stderr)
        return 2
    try:
        behaviors = parse_behaviors("none" if args.no_default_behaviors
                                    else args.default_behaviors)
    except ValueError as exc:
        print(f"sipha load scenario: {exc}", file=sys.stderr)
        return 2
    local_ips = tuple(ip.strip() for ip in args.local_ip.split(",") if ip.strip())
    if not local_ips:
        print("sipha load scenario: --local-ip names no address", file=sys.stderr)
        return 2
    if len(local_ips) > 1 and args.transport in ("t1", "tcp"):
        print("sipha load scenario: several --local-ip addresses need -t u1, un or tn "
              "(t1 is one connection)", file=sys.stderr)
        return 2
    if args.max_reconnect is not None and args.max_reconnect < 0:
        print("sipha load scenario: --max-reconnect must be >= 0", file=sys.stderr)
        return 2
    sockets = SocketOptions(per_call=args.transport in ("un", "tn"), local_ips=local_ips,
                            max_reconnect=args.max_reconnect,
                            reconnect_sleep=args.reconnect_sleep,
                            reconnect_close=args.reconnect_close == "true")
    local_ip, local_port = local_ips[0], args.local_port
    if args.listen:
        local_ip, local_port = _hostport(args.listen)
    remote = ("127.0.0.1", 5060)
    if operands:
        remote = _hostport(operands[0])
    elif scenario.client:
        print("sipha load scenario: a client scenario needs a TARGET", file=sys.stderr)
        return 2
    if len(operands) > 1:
        print(f"sipha load scenario: unexpected operands {operands[1:]}", file=sys.stderr)
        return 2
    config = RunConfig(
        local_ip=local_ip, local_port=local_port, remote_ip=remote[0], remote_port=remote[1],
        service=args.service, media_ip=args.media_ip, media_port=args.media_port,
        users=args.users, pause_ms=args.pause * 1000.0, recv_timeout=args.recv_timeout,
        max_retrans=args.max_retrans, max_retrans_invite=args.max_invite_retrans,
        base_cseq=args.base_cseq, auth_username=args.auth_user,
        auth_password=args.auth_password, behaviors=behaviors, auto_answer=args.auto_answer,
        cid_str=args.cid_str, transport="TCP" if args.transport in ("t1", "tn", "tcp") else "UDP",
    )
    try:
        schedule = RateSchedule(rate=args.rate, period=args.rate_period,
                                increase=args.rate_increase, interval=args.rate_interval,
                                rate_max=args.rate_max, quit_at_max=not args.no_rate_quit)
    except ValueError as exc:
        print(f"sipha load scenario: {exc}", file=sys.stderr)
        return 2
    bounds = RunBounds(rate=args.rate, schedule=schedule, max_calls=args.max_calls,
                       limit=args.limit, duration=args.duration, timeout=args.timeout,
                       drain_timeout=args.drain_timeout)
    if args.agents or args.expect:
        from sipha.loadtest.scenario.distributed import run_on_agents

        return run_on_agents(args, scenario, config, bounds, sockets)

    traces: dict[str, TextIO] = {}
    try:
        writers = _writers(args, scenario)
        for key in ("msg", "err", "rtt", "screen"):
            path = getattr(args, f"trace_{key}")
            if path:
                traces[key] = open(path, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        print(f"sipha load scenario: {exc}", file=sys.stderr)
        return 1

    live = None
    if not args.quiet and sys.stdout.isatty():
        live = LiveScreen(scenario, pause_ms=config.pause_ms,
                          target=f"{remote[0]}:{remote[1]}" if scenario.client else "")
    started = time.time()

    def on_period(engine: ScenarioEngine, wall: float) -> None:
        for w in writers:
            w.write(engine.stats, wall)
        if live is not None:
            live.update(engine.stats, wall - started)

    async def go() -> object:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        bound: asyncio.Future[int] = loop.create_future()
        bound.add_done_callback(lambda f: print(
            f"sipha load scenario: {scenario.name or scenario.file} on "
            f"{local_ip}:{f.result()}", flush=True))
        return await run_scenario(scenario, config, bounds, files=files, seed=args.seed,
                                  stop=stop, bound=bound,
                                  on_period=on_period if writers or live else None,
                                  period=args.stat_period, trace_msg=traces.get("msg"),
                                  trace_err=traces.get("err"), out_of_call=ooc,
                                  trace_rtt=traces.get("rtt"), sockets=sockets)

    if live is not None:
        live.start()
    try:
        engine = run_loop(go())
    except OSError as exc:
        print(f"sipha load scenario: {exc}", file=sys.stderr)
        if "screen" in traces:
            traces["screen"].close()
        return 1
    finally:
        if live is not None:
            live.stop()
        for w in writers:
            w.stream.close()
        for key, stream in traces.items():
            if key != "screen":
                stream.close()
    assert isinstance(engine, ScenarioEngine)
    screen = format_screen(scenario, engine.stats, pause_ms=config.pause_ms)
    if ooc is not None and engine.ooc_stats is not None:
        screen += "\n\nOut-of-call scenario:\n" + format_screen(ooc, engine.ooc_stats,
                                                            pause_ms=config.pause_ms)
    if "screen" in traces:
        with traces["screen"] as f:
            f.write(screen + "\n")
    if not args.quiet:
        print(screen)
    s = engine.stats
    print(f"created {s.created} successful {s.successful} failed {s.failed_calls}"
          + (f" {dict(s.failed)}" if s.failed else ""))
    return 0 if s.failed_calls == 0 else 3


