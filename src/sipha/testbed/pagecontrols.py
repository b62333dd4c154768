"""What the live page of a run (``sipha run --web``) may do to the run, on the runner's loop.

Each control is recorded in the run's events like a scheduled fault (so it is on the report's
timelines too) and answers a line for the page, or raises ValueError with the reason it cannot
act. The runner (:class:`sipha.testbed.runner.Runner`) mixes this class in: it holds the
processes, the roles, the dispatchers' and load controllers' APIs and, in netns mode, the
nemesis these controls act on.

* ``fault``: a process fault now (kill / stop / cont / start a node), as a plan's would;
* ``network`` (netns runs only): a network fault now, on a node's links, for ``duration``
  seconds: ``loss`` (percent), ``delay`` (ms), ``partition`` (the node cut from every other
  host), ``split_pair`` (the two dispatchers cut from each other), or ``heal`` (every network
  fault active now ends);
* ``server_state``: drain, disable or re-activate a server on every dispatcher;
* ``rate``: the sipha testers' total rate, through their load controllers;
* ``stop``: end the run (it still writes its results and report).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import msgspec

from sipha.testbed.faults import FaultInjector
from sipha.testbed.livepage import RunActions
from sipha.testbed.nemesis import Nemesis
from sipha.testbed.plan import PROCESS_ACTIONS, Fault, Plan, dispatcher_names, server_names
from sipha.testbed.processes import NodeProcess, NodeState, ProcessSet
from sipha.testbed.roles import RoleTracker
from sipha.testbed.sampler import HttpPoller

__all__ = ["PAGE_NETWORK_KINDS", "PageControls"]

# The network faults the page offers (the plan's [[faults]] have every kind).
PAGE_NETWORK_KINDS = frozenset({"loss", "delay", "partition", "split_pair", "heal"})
MAX_PAGE_FAULT_S = 600.0


class _Tester(Protocol):
    engine: str
    phase_index: int
    node: NodeProcess


class PageControls:
    """The page's controls; mixed into the runner, whose attributes these are."""

    plan: Plan
    procs: ProcessSet
    roles: RoleTracker
    http: dict[str, str]
    testers: Sequence[_Tester]
    _stage: str
    _poller: HttpPoller
    _control_token: str
    _controller_http: dict[int, str]
    # netns mode, while the load runs: the nemesis the runner's loop applies each tick
    _live_nemesis: Nemesis | None = None
    _page_faults = 0

    now: Callable[[], float]
    event: Callable[..., None]
    interrupt: Callable[[str], None]

    def _page_actions(self) -> RunActions:
        netns = self.plan.hosts.mode == "netns"
        return RunActions(stop=self._web_stop, fault=self._web_fault,
                          server_state=self._web_server_state, set_rate=self._web_rate,
                          network=self._web_network if netns else None)

    async def _web_stop(self) -> str:
        self.interrupt("stopped from the live page")
        return "stopping the run"

    async def _web_fault(self, action: str, node: str) -> str:
        if action not in PROCESS_ACTIONS:
            raise ValueError(f"{action!r} is not a process fault")
        if self._stage not in ("load", "drain"):
            raise ValueError("faults are injected while the load runs")
        fault = msgspec.convert({"at": 0.0, "action": action, "target": node}, Fault)
        injector = FaultInjector([fault], self.procs,
                                 dispatchers=dispatcher_names(self.plan),
                                 role_of=self.roles.role_of)
        outcome = injector.fire_due(math.inf)[0]
        now = self.now()
        self.roles.fault(outcome.node, action, now)
        if not outcome.ok:
            self.event("fault", node, f"{action} from the live page failed: {outcome.detail}")
            raise ValueError(outcome.detail)
        self.event("fault", outcome.node, f"{action} from the live page")
        return f"{action} {outcome.node}"

    async def _web_network(self, kind: str, node: str, params: Mapping[str, float]) -> str:
        nemesis = self._live_nemesis
        if nemesis is None or self._stage not in ("load", "drain"):
            raise ValueError("network faults are injected while the load of a netns run runs")
        if kind not in PAGE_NETWORK_KINDS:
            raise ValueError(f"{kind!r}: expected one of {sorted(PAGE_NETWORK_KINDS)}")
        now = self.now()
        if kind == "heal":
            healed = nemesis.heal_now(now)
            return f"{healed} network fault(s) healed" if healed else "no network fault to heal"
        duration = float(params.get("duration", 10.0))
        if not 0 < duration <= MAX_PAGE_FAULT_S:
            raise ValueError(f"duration: expected seconds in (0, {MAX_PAGE_FAULT_S:g}]")
        spec: dict[str, object] = {"at": now, "action": kind, "duration": duration}
        self._page_faults += 1
        spec["name"] = f"page-{self._page_faults}"
        if kind == "split_pair":
            if len(dispatcher_names(self.plan)) != 2:
                raise ValueError("split_pair needs the dispatcher pair")
        elif node not in nemesis.addresses:
            raise ValueError(f"{node!r} is not a host of this run")
        elif kind == "partition":
            spec["groups"] = [[node], sorted(h for h in nemesis.addresses if h != node)]
        else:
            spec["target"] = node
        if kind == "loss":
            spec["percent"] = float(params.get("percent", 5.0))
            if not 0 < float(spec["percent"]) <= 100:  # type: ignore[arg-type]
                raise ValueError("percent: expected a loss in (0, 100]")
        elif kind == "delay":
            spec["delay_ms"] = float(params.get("delay_ms", 50.0))
            if not 0 < float(spec["delay_ms"]) <= 10_000:  # type: ignore[arg-type]
                raise ValueError("delay_ms: expected a delay in (0, 10000]")
        nemesis.inject(msgspec.convert(spec, Fault), now)
        target = "d1 | d2" if kind == "split_pair" else node
        return f"{kind} {target} for {duration:g} s"

    async def _web_rate(self, rate: float) -> str:
        live = [tr for tr in self.testers if tr.engine == "sipha"
                and tr.node.state is NodeState.RUNNING and tr.phase_index in self._controller_http]
        if not live:
            raise ValueError("no sipha tester is running (SIPp testers keep the plan's rate)")
        answers = [await self._poller.post_json(self._controller_http[tr.phase_index], "/rate",
                                                {"rate": rate}, token=self._control_token)
                   for tr in live]
        if 200 not in answers:
            raise ValueError(f"the load controller did not take it (answers {answers})")
        self.event("control", "testers", f"rate {rate:g} calls/s from the live page")
        return f"sipha testers at {rate:g} calls/s in all"

    async def _web_server_state(self, server: str, state: str) -> str:
        if server not in server_names(self.plan):
            raise ValueError(f"{server!r} is not a server of this run")
        answers = []
        for d in dispatcher_names(self.plan):
            if d in self.http:
                status = await self._poller.post_json(self.http[d], f"/servers/{server}/state",
                                                      {"state": state})
                answers.append(status)
        if 200 not in answers:
            raise ValueError(f"no dispatcher took the change (answers {answers})")
        self.event("control", server, f"{state} from the live page")
        return f"{server} {state} on the dispatchers"
