"""``sipha load``: the load tester's command line, in SIPp's spirit.

    sipha load call TARGET --rate 100 --ramp 10/10s --max-rate 500 --duration 60s --hold 5s \\
        --users 1000 --csv out.csv
    sipha load register TARGET --users 1000 --password secret --rate 200 --max-calls 1000
    sipha load uas --listen 127.0.0.1:5070 --answer 0.8 --busy 0.2 --ring 1s
    sipha load keys keys/ --agents 4                   # CurveZMQ keys for the control plane
    sipha load controller call TARGET --bind 10.0.0.5:5555 --keys keys/ --expect 4 --rate 1000
    sipha load agent --controller 10.0.0.5:5555 --keys keys/ --key agent-1
    sipha load call TARGET --agents 2 --rate 4000      # controller + 2 local agent processes

This module only parses arguments and calls :mod:`sipha.loadtest.api`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from sipha.common.expect import EXIT_NOT_RUN, describe, exit_code
from sipha.common.loop import run as run_loop
from sipha.loadtest import verdict
from sipha.loadtest.curve import load_controller_keys
from sipha.loadtest.options import AnswerMix, ScenarioOptions
from sipha.loadtest.protocol import HoldTime, Plan, Ramp, UserRange

if TYPE_CHECKING:
    from sipha.loadtest.runner import AgentRunner
    from sipha.loadtest.view import LiveView

__all__ = ["add_arguments", "build_plan", "main", "parse_duration"]

RUN_SCENARIOS = ("call", "register", "options", "register+call")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """``"60s"``, ``"2m"``, ``"500ms"``, ``"1.5h"`` or plain seconds -> seconds."""
    m = _DURATION.match(text)
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 60s, 2m, 500ms)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_ramp(text: str) -> tuple[float, float]:
    """``"10/10s"`` -> (step 10 calls/s, every 10 s)."""
    step, sep, interval = text.partition("/")
    try:
        if not sep:
            raise ValueError
        return float(step), parse_duration(interval)
    except (ValueError, argparse.ArgumentTypeError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a ramp: write STEP/INTERVAL such as 10/10s"
        ) from None


def _target(text: str) -> tuple[str, int]:
    text = text.removeprefix("sip:")
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        return text.strip("[]"), 5060
    if not port.isdigit():
        raise argparse.ArgumentTypeError(f"target {text!r}: expected HOST[:PORT]")
    return host.strip("[]"), int(port)


def _add_run_options(p: argparse.ArgumentParser, *, uas: bool = False) -> None:
    g = p.add_argument_group("rate and bounds")
    g.add_argument("--rate", "-r", type=float, default=10.0,
                   help="calls (or transactions) per second; the ramp's start (default 10)")
    g.add_argument("--ramp", type=parse_ramp, metavar="STEP/INTERVAL",
                   help="raise the rate by STEP every INTERVAL, e.g. 10/10s")
    g.add_argument("--max-rate", type=float, help="rate the ramp stops at (default: --rate)")
    g.add_argument("--arrival", choices=("constant", "poisson"), default="constant",
                   help="evenly spaced calls, or Poisson arrivals (default constant)")
    g.add_argument("--duration", "-d", type=parse_duration,
                   help="stop starting calls after this long (e.g. 60s, 10m)")
    g.add_argument("--max-calls", "-m", type=int, help="stop after this many calls in total")
    g.add_argument("--max-concurrent", "-l", type=int,
                   help="cap on calls in progress; calls over the cap are skipped")
    g.add_argument("--hold", type=parse_duration, default=0.0,
                   help="call hold time before BYE (default 0)")
    g.add_argument("--hold-dist", choices=("fixed", "exponential"), default="fixed",
                   help="hold time fixed, or exponential with --hold as its mean")
    g.add_argument("--drain-timeout", type=parse_duration, default=40.0,
                   help="after the run, how long calls in progress may finish (default 40s, "
                   "past Timer B/F at the default T1)")
    s = p.add_argument_group("SIP")
    s.add_argument("--transport", "-t", choices=("udp", "tcp", "tls"), default="udp",
                   help="transport (default udp)")
    s.add_argument("--tls-ca", default="", metavar="PEM",
                   help="tls: CA the target's certificate must chain to (default: system CAs)")
    s.add_argument("--tls-cert", default="", metavar="PEM",
                   help="tls: certificate of the UAS listener, also offered as client "
                   "certificate (mutual TLS)")
    s.add_argument("--tls-key", default="", metavar="PEM",
                   help="tls: private key of --tls-cert (default: in the same file)")
    s.add_argument("--tls-no-verify", action="store_true",
                   help="tls: do not check the target's certificate (demos only)")
    s.add_argument("--local-ip", "-i", default="127.0.0.1", help="local address to bind")
    s.add_argument("--local-port", "-p", type=int, default=0,
                   help="local port (default: any free one)")
    s.add_argument("--uas-port", type=int, default=0,
                   help="register+call: port of the agent's UAS (default: any)")
    s.add_argument("--call-user", "-s", default="service",
                   help="Request-URI user to call (default service, as SIPp)")
    s.add_argument("--from-user", default="sipha", help="From user when --users is not given")
    s.add_argument("--domain", default="", help="SIP domain (default: the target host)")
    s.add_argument("--users", type=int, default=0,
                   help="number of users PREFIX<first>..; they authenticate and register")
    s.add_argument("--user-prefix", default="user", help="user name prefix (default user)")
    s.add_argument("--user-first", type=int, default=1, help="first user number (default 1)")
    s.add_argument("--password", default="", help="digest password of the users")
    s.add_argument("--expires", type=int, default=3600,
                   help="REGISTER expiry asked for, in seconds (default 3600); refreshes "
                   "follow the registrar's answer")
    s.add_argument("--t1", type=parse_duration, default=0.5,
                   help="RFC 3261 T1 (default 500ms); Timer B/F = 64*T1")
    s.add_argument("--t2", type=parse_duration, default=4.0, help="RFC 3261 T2 (default 4s)")
    s.add_argument("--ring-timeout", type=parse_duration, default=60.0,
                   help="UAC: CANCEL calls still ringing after this long (default 60s)")
    s.add_argument("--recv-timeout", type=parse_duration, default=0.0,
                   help="UAC: fail a call whose INVITE or BYE got no final answer this long "
                   "after it was sent, before Timer B/F (like SIPp's -recv_timeout; "
                   "default 0: the RFC timers)")
    s.add_argument("--no-sdp", action="store_true", help="send INVITEs and 200s without SDP")
    a = p.add_argument_group("UAS answers (uas, register+call)")
    a.add_argument("--answer", type=float, default=1.0, help="share of calls answered (200)")
    a.add_argument("--busy", type=float, default=0.0, help="share rejected with --busy-code")
    a.add_argument("--no-answer", type=float, default=0.0,
                   help="share left ringing until CANCEL")
    a.add_argument("--busy-code", type=int, default=486, help="busy status code (default 486)")
    a.add_argument("--ring", type=parse_duration, default=0.0,
                   help="ring time between 180 and the final answer (default 0)")
    o = p.add_argument_group("outputs")
    o.add_argument("--csv", help="per-second CSV with SIPp -trace_stat column names")
    o.add_argument("--jsonl", help="per-second JSON lines plus a final summary")
    o.add_argument("--results", help="folder for stats.csv, stats.jsonl, events.jsonl")
    o.add_argument("--quiet", "-q", action="store_true", help="no live view")
    o.add_argument("--web", metavar="HOST:PORT", default=None,
                   help="serve a live page of the run (charts, agents, controls behind a token "
                        "printed once here); loopback unless you mean it")
    o.add_argument("--seed", type=int, default=0, help="random seed (default: from the clock)")
    if not uas:
        d = p.add_argument_group("distribution")
        d.add_argument("--agents", type=int, default=0, metavar="K",
                       help="spawn K local agent processes and a controller (use K cores)")
        verdict.add_arguments(p)


def _add_scenario_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", type=_target, metavar="TARGET", help="HOST[:PORT] of the target")
    _add_run_options(p)


def _add_uas_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("uas only")
    g.add_argument("--listen", default="", metavar="HOST:PORT",
                   help="address to answer calls on (instead of -i/-p; default: any free port)")
    g.add_argument("--registrar", type=_target, metavar="HOST[:PORT]",
                   help="register the --users there (and refresh before the granted expiry)")


def _add_controller_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("controller SCENARIO TARGET (plus the scenario options)")
    g.add_argument("scenario", choices=RUN_SCENARIOS,
                   help="what every agent runs: " + ", ".join(RUN_SCENARIOS))
    g.add_argument("target", type=_target, help="HOST[:PORT] the agents send to")
    g.add_argument("--bind", default="127.0.0.1:5555", metavar="HOST:PORT",
                   help="address the agents connect to (default 127.0.0.1:5555)")
    g.add_argument("--keys", metavar="DIR",
                   help="CurveZMQ keys from `sipha load keys DIR`: only agents whose public "
                   "key is in DIR/agents may join (required unless --bind is loopback)")
    g.add_argument("--expect", type=int, default=1, metavar="N",
                   help="agents to wait for before starting; the rate is split among them "
                   "(default 1)")
    g.add_argument("--join-timeout", type=parse_duration, default=120.0, metavar="DURATION",
                   help="how long to wait for the agents to join (default 120s)")


def _add_agent_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("agent")
    g.add_argument("--controller", required=True, metavar="HOST:PORT",
                   help="address of the controller to join (its --bind)")
    g.add_argument("--id", default=None,
                   help="agent id in the controller's reports (default: hostname-pid)")
    g.add_argument("--keys", metavar="DIR",
                   help="CurveZMQ keys: DIR/controller.key and DIR/agents/NAME.key_secret")
    g.add_argument("--key", metavar="NAME",
                   help="this agent's key pair in DIR/agents (default: the only one there)")


def _add_keys_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("keys DIR")
    g.add_argument("directory", metavar="DIR", help="folder to write the key files to")
    g.add_argument("--agents", type=int, default=1, metavar="N",
                   help="key pairs agent-1 .. agent-N to make (default 1)")


def _section(add: Any, title: str | None = None) -> str:
    # The same adder builds the real sub-command and this text, so the two cannot drift.
    probe = argparse.ArgumentParser(prog="sipha load", usage=argparse.SUPPRESS,
                                    add_help=False, description=title)
    add(probe)
    return probe.format_help()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``sipha load ...``: one sub-command per scenario, plus uas, controller and agent."""
    sub = parser.add_subparsers(dest="load_command", metavar="SCENARIO", required=True)
    helps = {
        "call": "place calls: INVITE, ACK, hold, BYE",
        "register": "REGISTER users (digest auth)",
        "options": "send OPTIONS",
        "register+call": "this agent's UAS registers the users, its UAC calls them",
        "uas": "answer calls (and register --users at --registrar)",
        "controller": "run a plan over remote agents",
        "agent": "run as an agent of a controller",
        "keys": "make CurveZMQ keys for a controller and its agents",
    }
    for name in RUN_SCENARIOS:
        p = sub.add_parser(name, help=helps[name], description=helps[name])
        _add_scenario_arguments(p)
    p = sub.add_parser("uas", help=helps["uas"], description=helps["uas"])
    _add_uas_options(p)
    _add_run_options(p, uas=True)
    p = sub.add_parser("controller", help=helps["controller"], description=helps["controller"])
    _add_controller_options(p)
    _add_run_options(p)
    p = sub.add_parser("agent", help=helps["agent"], description=helps["agent"])
    _add_agent_options(p)
    p = sub.add_parser("keys", help=helps["keys"], description=helps["keys"])
    _add_keys_options(p)
    from sipha.loadtest.scenario import cli as scenario_cli

    p = sub.add_parser("scenario", help="run a SIPp XML scenario (client or --listen server)",
                       description=scenario_cli.__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    scenario_cli.add_arguments(p)
    # `sipha load --help` lists every option of every sub-command, as promised.
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "\n".join((
        "scenarios: call, register, options, register+call (TARGET = HOST[:PORT]);",
        "           uas; controller SCENARIO TARGET --bind --expect; agent --controller;",
        "           keys DIR --agents N",
        "           scenario FILE.xml TARGET or --sn NAME: SIPp XML (docs/scenarios.md)",
        "",
        _section(_add_scenario_arguments,
                 "call, register, options, register+call (uas and controller: all but TARGET):"),
        _section(_add_uas_options),
        _section(_add_controller_options),
        _section(_add_agent_options),
        _section(_add_keys_options),
        _section(scenario_cli.add_arguments, "scenario (SIPp XML scenarios):"),
    ))


def build_plan(args: argparse.Namespace, scenario: str) -> Plan:
    """The :class:`Plan` the arguments describe.  Raises ``ValueError`` for contradictions."""
    host, port = getattr(args, "target", None) or getattr(args, "registrar", None) or (
        "127.0.0.1", 5060)
    local_ip, local_port = args.local_ip, args.local_port
    if getattr(args, "listen", ""):
        lh, _, lp = args.listen.rpartition(":")
        local_ip, local_port = lh.strip("[]") or local_ip, int(lp)
    ramp = None
    if args.ramp is not None:
        step, interval = args.ramp
        ramp = Ramp(start=args.rate, step=step, interval=interval,
                    max=args.max_rate if args.max_rate is not None else args.rate)
    elif args.max_rate is not None and args.max_rate != args.rate:
        raise ValueError("--max-rate needs --ramp STEP/INTERVAL")
    users = None
    if args.users:
        users = UserRange(prefix=args.user_prefix, first=args.user_first, count=args.users,
                          domain=args.domain or host, password=args.password)
    if args.transport == "tls" and scenario in ("uas", "register+call") and not args.tls_cert:
        raise ValueError(
            f"{scenario} over TLS answers calls on a TLS listener: give it --tls-cert and "
            "--tls-key (`sipha certs DIR` makes test ones)"
        )
    options = ScenarioOptions(
        arrival=args.arrival, t1=args.t1, t2=args.t2, ring_timeout=args.ring_timeout,
        recv_timeout=args.recv_timeout,
        call_user=args.call_user, from_user=args.from_user, domain=args.domain,
        local_host=local_ip, local_port=local_port, uas_port=args.uas_port,
        register_expires=args.expires, sdp=not args.no_sdp,
        mix=AnswerMix(answer=args.answer, busy=args.busy, no_answer=args.no_answer,
                      busy_code=args.busy_code),
        ring_time=args.ring, drain_timeout=args.drain_timeout,
        tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key,
        tls_verify=not args.tls_no_verify,
    )
    return Plan(
        run_id="", scenario=scenario, target_host=host, target_port=port,
        transport=args.transport, rate=args.rate, duration=args.duration, start_at=time.time(),
        seed=args.seed or int(time.time() * 1000) % 2**31, ramp=ramp, max_calls=args.max_calls,
        max_concurrent=args.max_concurrent,
        hold=HoldTime(distribution=args.hold_dist, mean=args.hold), users=users,
        options=options,
    )


async def _with_signals(coro_factory: Any, stop: asyncio.Event) -> Any:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return await coro_factory()


class LiveHooks(Protocol):
    """A live page beside the run (`sipha load --web`, served by sipha.report, which this
    layer may not import: the top-level command passes it in)."""

    def wrap_view(self, view: LiveView | None, plan: Plan) -> LiveView: ...

    def attach(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event,
               set_rate: Callable[[float], str] | None) -> None: ...

    def close(self) -> None: ...


def main(args: argparse.Namespace, *, live: LiveHooks | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    command = args.load_command
    if command == "agent":
        return _agent(args)
    if command == "keys":
        return _keys(args)
    if command == "scenario":
        from sipha.loadtest.scenario import cli as scenario_cli

        return scenario_cli.main(args)
    from sipha.loadtest import api
    from sipha.loadtest.view import make_view

    scenario = args.scenario if command == "controller" else command
    try:
        plan = build_plan(args, scenario)
    except (ValueError, msgspec.ValidationError) as exc:
        print(f"sipha load: {exc}", file=sys.stderr)
        return 2
    if plan.duration is None and plan.max_calls is None and scenario != "uas":
        print("sipha load: no bound: running until Ctrl-C", file=sys.stderr)
    view: LiveView | None = make_view(duration=plan.duration, quiet=args.quiet)
    if live is not None:
        view = live.wrap_view(view, plan)
    outputs: dict[str, Any] = {"results_dir": args.results, "csv_path": args.csv,
                               "jsonl_path": args.jsonl, "view": view}
    stop = asyncio.Event()

    def attach_local(runner: AgentRunner) -> None:
        # A live page changes the rate of a run in this process; agents elsewhere keep the
        # plan's (the control protocol carries no rate change yet).
        if live is not None:
            def set_rate(rate: float) -> str:
                runner.set_rate(rate)
                return f"target rate {rate:g} calls/s"

            live.attach(asyncio.get_running_loop(), stop, set_rate)

    async def go() -> Any:
        if live is not None and (command == "controller" or getattr(args, "agents", 0)):
            live.attach(asyncio.get_running_loop(), stop, None)
        if command == "controller":
            keys = None
            if args.keys:
                keys = load_controller_keys(args.keys)
            else:
                print("sipha load: controller without --keys: any local process may join "
                      "and read the plan (with the users' password)", file=sys.stderr)
            controller = api.Controller(plan, expect_agents=args.expect, bind=args.bind,
                                        join_timeout=args.join_timeout, keys=keys, **outputs)
            watcher = asyncio.get_running_loop().create_task(stop.wait())
            watcher.add_done_callback(lambda _: controller.stop())
            try:
                return await controller.run()
            finally:
                watcher.cancel()
        if getattr(args, "agents", 0):
            return await api.run_distributed(plan, agents=args.agents, stop=stop, **outputs)
        return await api.run_local(plan, stop=stop, on_runner=attach_local, **outputs)

    try:
        result = run_loop(_with_signals(go, stop))
    except (OSError, TimeoutError, ValueError) as exc:
        print(f"sipha load: {exc}", file=sys.stderr)
        return EXIT_NOT_RUN
    finally:
        if live is not None:
            live.close()
    totals = result.totals
    lost = result.lost_agents
    print(
        f"attempted {totals.calls_attempted} successful {totals.calls_successful} "
        f"failed {totals.calls_failed} {dict(totals.failed_by_reason) or ''}"
        + (f" lost agents: {', '.join(lost)}" if lost else "")
    )
    if lost:  # their calls after they went silent are unknown: no verdict on half a run
        print(f"sipha load: lost agents {', '.join(lost)}: no verdict", file=sys.stderr)
        return EXIT_NOT_RUN
    verdicts = verdict.judge(verdict.criteria_from_args(args), result)
    for v in verdicts:
        print(describe(v), file=sys.stdout if v.passed else sys.stderr)
    return exit_code(verdicts)


def _keys(args: argparse.Namespace) -> int:
    from sipha.loadtest.curve import create_keys

    if not 1 <= args.agents <= 10_000:
        print("sipha load keys: --agents must be 1 .. 10000", file=sys.stderr)
        return 2
    try:
        written = create_keys(args.directory, [f"agent-{i + 1}" for i in range(args.agents)])
    except (OSError, ValueError) as exc:
        print(f"sipha load keys: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def _agent(args: argparse.Namespace) -> int:
    from sipha.loadtest.agent import Agent, AgentRefused
    from sipha.loadtest.curve import KeyFileError, load_agent_keys

    keys = None
    if args.keys:
        try:
            keys = load_agent_keys(args.keys, args.key)
        except KeyFileError as exc:
            print(f"sipha load agent: {exc}", file=sys.stderr)
            return 2
    agent = Agent(args.controller, agent_id=args.id, keys=keys)
    try:
        totals = run_loop(agent.run())
    except AgentRefused as exc:
        print(f"sipha load agent: refused by the controller: {exc}", file=sys.stderr)
        return 2
    except TimeoutError:
        print(f"sipha load agent: no controller answered at {args.controller}", file=sys.stderr)
        return 1
    print(f"agent {agent.agent_id}: attempted {totals.calls_attempted} "
          f"successful {totals.calls_successful} failed {totals.calls_failed}")
    return 0
