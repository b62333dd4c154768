"""Testers that run a user's SIPp XML scenario, with its injection files.

A plan's tester may name ``scenario = "reg_call.xml"`` and ``inf = ["users.csv"]`` (paths
relative to the plan file).  A ``sipp`` tester runs them as SIPp does, ``-sf`` and ``-inf``
instead of the built-in ``-sn uac``; the ``sipha`` testers run them on their load agents: the
phase's controller is then ``sipha load scenario FILE TARGET --expect N`` which ships the same
files to them and splits the injection rows between them (SEQUENTIAL and USER modes).  The
calls of both engines land in the same per-second records of the report, as with the built-in
call.

One controller ships one scenario: every ``sipha`` tester of a plan names the same scenario and
files (SIPp testers may each have their own).  The files are loaded and checked when the plan
is, so a bad scenario stops the run before any process starts, naming the file and line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgspec

from sipha.common.config import ConfigError
from sipha.loadtest.scenario.check import check_injections
from sipha.loadtest.scenario.errors import ScenarioError
from sipha.loadtest.scenario.injection import load_injection
from sipha.loadtest.scenario.loader import load_scenario
from sipha.testbed.plan import Phase, Plan, Tester

__all__ = ["check_scenario_testers", "scenario_controller_argv", "sipha_scenario",
           "sipp_scenario_args", "with_scenario_paths"]

Err = Callable[[str, str, str], ConfigError]


def with_scenario_paths(plan: Plan, base: Path) -> Plan:
    """``plan`` with its testers' relative scenario and injection paths made absolute from
    ``base`` (the plan file's folder), so that they name the same files from any process."""

    def fix(path: str) -> str:
        return path if not path or Path(path).is_absolute() else str(base / path)

    testers = [msgspec.structs.replace(t, scenario=fix(t.scenario), inf=[fix(f) for f in t.inf])
               for t in plan.testers]
    return msgspec.structs.replace(plan, testers=testers)


def sipha_scenario(plan: Plan) -> Tester | None:
    """The sipha testers' scenario (one of them stands for all), or None: the built-in call."""
    for t in plan.testers:
        if t.engine == "sipha" and t.scenario:
            return t
    return None


def check_scenario_testers(plan: Plan, err: Err) -> None:
    """Raise ``err(field, problem, fix)`` for a tester whose scenario cannot run."""
    sipha = [(i, t) for i, t in enumerate(plan.testers) if t.engine == "sipha"]
    shapes = {(t.scenario, tuple(t.inf)) for _, t in sipha}
    if len(shapes) > 1:
        i = sipha[-1][0]
        raise err(f"testers[{i}].scenario", "sipha testers name different scenarios",
                  "one controller ships one scenario: give every sipha tester the same "
                  "scenario and inf (SIPp testers may differ)")
    for i, t in enumerate(plan.testers):
        if t.inf and not t.scenario:
            raise err(f"testers[{i}].inf", "injection files without a scenario",
                      'name the scenario that reads them: scenario = "FILE.xml"')
        if not t.scenario:
            continue
        try:
            scenario = load_scenario(t.scenario)
            files = [load_injection(f) for f in t.inf]
            check_injections(scenario, files, users=0)
        except ScenarioError as exc:
            raise err(f"testers[{i}].scenario", str(exc), "fix the scenario or its files") from None
        if not scenario.client:
            raise err(f"testers[{i}].scenario", f"{t.scenario} starts with <recv>",
                      "a tester places calls: give a client scenario")


def sipp_scenario_args(tester: Tester) -> list[str]:
    """What names the scenario on SIPp's command line: ``-sf FILE -inf F..`` or ``-sn uac``."""
    if not tester.scenario:
        return ["-sn", "uac"]
    out = ["-sf", tester.scenario]
    for f in tester.inf:
        out += ["-inf", f]
    return out


def scenario_controller_argv(tester: Tester, agents: int, phase: Phase, *, target: str,
                             bind: str, local_ip: str, transport: str, jsonl: Path,
                             drain: float) -> list[str]:
    """``sipha load scenario`` as the controller of ``agents`` agents for one phase (the
    arguments after ``sipha``): ``phase.rate`` calls/s per tester, ``-d`` the phase's hold."""
    argv = ["load", "scenario", tester.scenario, target, "--expect", str(agents),
            "--bind", bind, "--join-timeout", "20s", "-r", f"{phase.rate * agents:g}",
            "--duration", f"{phase.duration:g}s", "--pause", f"{phase.hold:g}s",
            "-s", phase.call_user, "-i", local_ip, "-t", "t1" if transport == "tcp" else "u1",
            "--jsonl", str(jsonl), "--quiet", "--drain-timeout", f"{max(drain, 1.0):g}s"]
    for f in tester.inf:
        argv += ["--inf", f]
    if phase.recv_timeout > 0:
        argv += ["--recv-timeout", f"{phase.recv_timeout:g}s"]
    if phase.ramp_step > 0 and phase.ramp_max is not None:
        argv += ["--rate-increase", f"{phase.ramp_step * agents:g}",
                 "--rate-interval", f"{phase.ramp_interval:g}s",
                 "--rate-max", f"{phase.ramp_max * agents:g}", "--no-rate-quit"]
    return argv
