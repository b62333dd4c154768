"""`sipha run`: stand the cluster up, run the load, inject the faults, leave nothing behind.

Theory of operation
-------------------
One asyncio task drives a run through its stages:

1. *start*: a loopback block for the run (:mod:`.addresses`), config files, then redis (if
   the plan asks for it), users (``sipha users generate``), the servers, the dispatchers, each
   its own process group (:mod:`.processes`), each waited for until it answers (HTTP
   ``/health``, SIP OPTIONS; the pair until one of them is active and the service address
   answers);
2. *load*: run time 0 is the start of the first phase; every 100 ms the runner polls the
   dispatchers' roles (:class:`.roles.RoleTracker` turns them into takeover times), fires due
   faults (:class:`.faults.FaultInjector`), starts the testers of a phase that begins and checks
   for crashed nodes; every second it samples active calls per server and CPU per node and
   redraws the live view;
3. *drain*: after the last phase, testers get ``drain`` seconds to finish their calls (and a
   few more to count what is left as failed and report it);
4. *stop*: always, whatever happened before (Ctrl-C, a crashed node, a bug): every process
   group is terminated then killed, the testers' outputs are read into ``calls.jsonl``,
   ``meta.json`` records the status and any process left over, and the report is rendered.

In netns mode (``[hosts] mode = "netns"``, :func:`run_plan`) every host is a network namespace
(:mod:`.netns`), created before the run and removed after it whatever happens; the runner's
thread joins the bridge's namespace for the run, nodes start through ``ip netns exec``, the
pair runs in ip mode with the run's fence script, and network faults go to the nemesis
(:mod:`.nemesis`) instead of the process fault injector.

Ctrl-C (SIGINT) or SIGTERM sets an Event the stages watch; the run then goes straight to
*stop*, so an interrupted run still writes its partial results.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from sipha.common.process import wait_sip_options
from sipha.loadtest.curve import create_keys
from sipha.report.model import (
    CALLS,
    EVENTS,
    NODES,
    ROLES,
    SERVERS,
    CallsSecond,
    Event,
    JsonlWriter,
    NodeInfo,
    RoleSample,
    RunMeta,
    write_meta,
)
from sipha.report.render import render_report
from sipha.testbed import commands, testers
from sipha.testbed.addresses import (
    HTTP_PORT,
    NETNS_BLOCK,
    SIP_PORT,
    AddressBlock,
    allocate_block,
)
from sipha.testbed.faults import FaultInjector
from sipha.testbed.hostmap import netns_hosts, wired_hosts
from sipha.testbed.livepage import RunPage
from sipha.testbed.nemesis import Applier, Nemesis, Transition, kernel_has_netem
from sipha.testbed.netns import BRIDGE_ADDRESS, Hosts, run_prefix, unavailable
from sipha.testbed.pagecontrols import PageControls
from sipha.testbed.plan import (
    PROCESS_ACTIONS,
    Fault,
    Phase,
    Plan,
    dispatcher_names,
    expect_for,
    group_members,
    plan_to_dict,
)
from sipha.testbed.processes import NodeProcess, NodeState, ProcessSet
from sipha.testbed.progress import Progress, Snapshot
from sipha.testbed.redisnodes import StoreWatch, start_store
from sipha.testbed.roles import RoleTracker
from sipha.testbed.sampler import CpuSampler, HttpPoller
from sipha.testbed.ssh import run_over_ssh
from sipha.testbed.testers import read_sipha_jsonl, read_sipha_setup_p99, read_sipp_stat

__all__ = ["RunAborted", "RunOutcome", "Runner", "run_plan"]

_ROLE_POLL = 0.1
_SAMPLE = 1.0
_START_TIMEOUT = 20.0
_REPORT_WAIT = 2.0
_TESTER_SLACK = 3.0


class RunAborted(Exception):
    """The run cannot go on: a node did not start, or crashed (``on_node_crash = abort``)."""


class _Interrupted(Exception):
    pass


@dataclass
class RunOutcome:
    folder: Path
    status: str
    detail: str
    report: Path | None
    leftover_pids: list[int] = field(default_factory=list)


@dataclass
class _TesterRun:
    """A process whose output holds calls: a SIPp, or the sipha load controller."""

    engine: str
    phase_index: int
    offset: float  # run time at which it starts
    node: NodeProcess
    output: Path
    source: str

    def read(self, t0: float) -> list[CallsSecond]:
        t0 += getattr(self.node, "clock_offset", 0.0)  # its host's clock (ssh mode)
        if self.engine == "sipp":
            return read_sipp_stat(self.output, t0=t0, source=self.source)
        return read_sipha_jsonl(self.output, t0=t0, source=self.source)


class Runner(PageControls):
    """One run of one plan into one results folder."""

    def __init__(
        self,
        plan: Plan,
        out: Path,
        *,
        progress: Progress | None = None,
        block: AddressBlock | None = None,
        hosts: Hosts | None = None,
        netem: bool = True,
        web: tuple[str, int] | None = None,
        make_node: Callable[..., NodeProcess] = NodeProcess,
    ) -> None:
        self.plan = plan
        self._make_node = make_node  # ssh mode: a RemoteNode for the nodes placed on hosts
        # The live page (``--web``): what the terminal view shows, and controls.
        self.web = (RunPage(web, f"{plan.name} [{plan.profile}]", criteria=expect_for(plan),
                            results=out.resolve().parent) if web is not None else None)
        # The load controllers' HTTP APIs (phase -> HOST:PORT), for the page's rate control.
        self._controller_http: dict[int, str] = {}
        self.hosts = hosts  # netns mode: every node on a host (namespace) of its own
        self.netem = netem  # whether the kernel has sch_netem
        # Absolute: every node runs with the results folder as its working directory, so a
        # relative path (the CLI's default) would name a folder inside itself.
        self.out = out.resolve()
        self.progress = progress or Progress()
        self.block = block
        self.procs = ProcessSet()
        self.http: dict[str, str] = {}  # node -> HOST:PORT of its API
        self.testers: list[_TesterRun] = []
        # A pair reports its own takeover times (the forwarding gap); wait that long for them.
        self.roles = RoleTracker(dispatcher_names(plan),
                                 wait_reported=_REPORT_WAIT if plan.dispatchers.count == 2 else 0)
        self._stop = asyncio.Event()
        self._stop_reason = ""
        self._t0 = 0.0
        self._stage = "start"
        self._events_text: list[str] = []
        self._started_phases: set[int] = set()
        self._writers: dict[str, JsonlWriter] = {}
        self._held: list[tuple[str, Event | RoleSample]] = []
        # The nodes' APIs take the run's token (required off loopback, in netns mode).
        self._control_token = secrets.token_urlsafe(18)
        self._poller = HttpPoller(token=self._control_token)
        self._cpu = CpuSampler()
        self.store_watch = StoreWatch(plan, self.event)  # the store failover time
        self._last_server: dict[str, int] = {}  # active calls at the last sample, -1 = down
        self._last_usage: dict[str, tuple[float, float]] = {}  # node -> (CPU %, RSS MB)
        self._health: dict[str, str] = {}  # server -> state at the active dispatcher (--web)
        self._meta = RunMeta(name=plan.name, profile=plan.profile, time_scale=plan.time_scale,
                             load_duration=plan.load_duration, plan=plan_to_dict(plan),
                             expect=expect_for(plan))

    # -- bookkeeping ---------------------------------------------------------------------------

    def now(self) -> float:
        """Run time: seconds since the load started; before that, unix time (records made then
        are held back and shifted once run time 0 is known, see ``_write``)."""
        return time.time() - self._t0

    def _write(self, name: str, record: Event | RoleSample) -> None:
        if self._t0:
            self._writers[name].write(record)
        else:
            self._held.append((name, record))

    def _set_t0(self, t0: float) -> None:
        self._t0 = t0
        for name, record in self._held:
            record.t = round(record.t - t0, 3)
            self._writers[name].write(record)
        self._held.clear()

    def event(self, kind: str, node: str = "", detail: str = "", ms: float | None = None) -> None:
        e = Event(t=round(self.now(), 3), kind=kind, node=node, detail=detail, ms=ms)
        self._write(EVENTS, e)
        self._log_event(e)
        if self.web is not None:
            self.web.event(e if self._t0 else Event(t=0.0, kind=kind, node=node, detail=detail,
                                                    ms=ms))

    def _log_event(self, e: Event) -> None:
        shown = e.t if self._t0 else 0.0
        text = f"{shown:7.2f} s  {e.kind} {e.node} {e.detail}".rstrip()
        if e.ms is not None:
            text += f" ({e.ms:.0f} ms)"
        self._events_text.append(text)

    def interrupt(self, reason: str = "interrupted") -> None:
        """Ask the run to stop now (SIGINT handler, tests)."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake (and raise) as soon as the run is interrupted."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        if self._stop.is_set():
            raise _Interrupted(self._stop_reason)

    # -- the run -------------------------------------------------------------------------------

    async def run(self) -> RunOutcome:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.interrupt, "interrupted by " + sig.name)
        self.out.mkdir(parents=True, exist_ok=True)
        for name in (CALLS, SERVERS, ROLES, NODES, EVENTS):
            (self.out / name).unlink(missing_ok=True)
            self._writers[name] = JsonlWriter(self.out / name)
        status, detail = "complete", ""
        if self.web is not None:
            self.web.serve()  # already serving when run_plan started it
            self.web.attach(loop, self._page_actions())
        try:
            with self.progress:
                async with self._poller:
                    try:
                        await self._start_cluster()
                        await self._load()
                    except _Interrupted as exc:
                        status, detail = "interrupted", str(exc)
                    except RunAborted as exc:
                        status, detail = "aborted", str(exc)
                        self.event("error", detail=detail)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            # Shutdown blocks (waits for processes): keep it off the loop, but finish it even
            # if this task is cancelled.
            await asyncio.shield(asyncio.to_thread(self._stop_all))
            shutil.rmtree(self.out / "keys", ignore_errors=True)  # secrets of this run only
            self._flush_takeovers(self.now(), all_=True)
            leftovers = self.procs.leftovers()
            self._set_t0(self._t0 or time.time())  # flush what was held back
            self._write_calls()
            for w in self._writers.values():
                w.close()
            self._meta.status, self._meta.status_detail = status, detail
            self._meta.leftover_pids = leftovers
            write_meta(self.out, self._meta)
        report = render_report(self.out)
        if self.web is not None:
            self.web.close()
        return RunOutcome(self.out, status, detail, report, leftovers)

    def _tester_keys(self, names: list[str]) -> Path:
        """The run's CurveZMQ keys (controller + one pair per sipha tester), made once in a
        private folder of the results, removed when the run ends."""
        folder = self.out / "keys"
        if not (folder / "controller.key").exists():
            create_keys(folder, names)
        return folder

    def _stop_all(self) -> None:
        self.procs.shutdown(grace=3.0, order=("tester", "controller", "dispatcher", "server"))

    def _write_calls(self) -> None:
        records = [c for tr in self.testers for c in tr.read(self._t0)]
        records.sort(key=lambda c: (c.t, c.source))
        w = self._writers[CALLS]
        for c in records:
            w.write(c)
        p99s = [p for tr in self.testers if tr.engine == "sipha"
                if (p := read_sipha_setup_p99(tr.output)) is not None]
        self._meta.setup_p99_ms = max(p99s, default=None)
        self._meta.failed_registrations = testers.failed_registrations(self.plan, [
            (tr.phase_index, tr.output) for tr in self.testers if tr.engine == "sipha"])
        self._meta.store_failover_ms = list(self.store_watch.failovers_ms)

    # -- start ---------------------------------------------------------------------------------

    def _add(self, cmd: commands.NodeCommand) -> NodeProcess:
        argv = self.hosts.exec_argv(cmd.address, cmd.argv) if self.hosts else cmd.argv
        node = self.procs.add(self._make_node(
            name=cmd.name, kind=cmd.kind, argv=argv, address=cmd.address,
            log_path=self.out / "logs" / f"{cmd.name}.log", cwd=self.out,
        ))
        if cmd.http:
            self.http[cmd.name] = cmd.http
        self._meta.nodes.append(NodeInfo(name=cmd.name, kind=cmd.kind, address=cmd.address))
        return node

    async def _start_cluster(self) -> None:
        plan = self.plan
        self.block = self.block or allocate_block()
        block = self.block
        config_dir = self.out / "config"
        config_dir.mkdir(exist_ok=True)
        (self.out / "store.db").unlink(missing_ok=True)
        write_meta(self.out, self._meta)
        self._snapshot()
        url = await start_store(plan, block, self.out, config_dir, self._add, self._wait)
        self.store_watch.block = block
        # Always: it also creates the store's schema once, before servers open it together.
        await self._provision(url)
        servers = [self._add(commands.server_command(plan, i, block, config_dir, url,
                                                     token=self._control_token))
                   for i in range(1, plan.servers.count + 1)]
        for n in servers:
            n.start()
        for n in servers:
            await self._wait_http(n)
            host = n.address
            await self._wait(n.name, lambda h=host: asyncio.to_thread(  # type: ignore[misc]
                wait_sip_options, h, SIP_PORT, _START_TIMEOUT, local=self._local))
        fence = ""
        if self.hosts is not None:
            fence = self.hosts.write_fence_script(config_dir / "fence.sh", vip=block.service,
                                                  log=self._fenced_log)
        dispatchers = [self._add(commands.dispatcher_command(plan, i, block, config_dir,
                                                             fence_command=fence,
                                                             token=self._control_token))
                       for i in range(1, plan.dispatchers.count + 1)]
        for n in dispatchers:
            n.start()
        for n in dispatchers:
            await self._wait_http(n)
        await self._wait_active()
        await self._wait("service address", lambda: asyncio.to_thread(
            wait_sip_options, block.service, SIP_PORT, _START_TIMEOUT, local=self._local))
        where = f"{block.first}.{block.a}.{block.b}.0/24"
        if self.hosts is not None:
            ha = "keepalived" if plan.dispatchers.ha == "keepalived" else "ip mode"
            where += f" (netns hosts {self.hosts.prefix}-*, pair in {ha})"
        self.progress.log(f"cluster up on {where}; results in {self.out}")

    async def _provision(self, url: str) -> None:
        argv = commands.users_command(self.plan, url)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=self.out, start_new_session=True,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise RunAborted("provisioning users timed out") from None
        (self.out / "logs").mkdir(exist_ok=True)
        (self.out / "logs" / "users.log").write_bytes(out)
        if proc.returncode != 0:
            raise RunAborted(f"sipha users generate failed: {out.decode(errors='replace')[-300:]}")

    async def _wait(self, what: str, probe: Callable[[], Awaitable[object]]) -> None:
        task = asyncio.ensure_future(probe())
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if task not in done:
            task.cancel()
            # The probe runs in a thread and ends by its own timeout; do not wait for it.
            raise _Interrupted(self._stop_reason)
        try:
            task.result()
        except TimeoutError:
            raise RunAborted(f"{what} did not become ready: see {self.out / 'logs'}") from None

    async def _wait_http(self, node: NodeProcess) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if node.state is NodeState.EXITED:
                raise RunAborted(f"{node.name} exited while starting: see {node.log_path}")
            if await self._poller.get_json(self.http[node.name], "/health") is not None:
                return
            await self._sleep(0.1)
        raise RunAborted(f"{node.name} did not answer /health: see {node.log_path}")

    async def _wait_active(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            await self._poll_roles()
            if self.roles.active is not None:
                return
            await self._sleep(0.1)
        raise RunAborted("no dispatcher became active")

    # -- load ----------------------------------------------------------------------------------

    async def _load(self) -> None:
        plan = self.plan
        await self._sleep(plan.settle)
        self._set_t0(time.time() + 0.2)
        self._meta.started_at = self._t0
        write_meta(self.out, self._meta)
        self._stage = "load"
        self.event("phase", detail="load starts")
        injector = FaultInjector([f for f in plan.faults if f.action in PROCESS_ACTIONS],
                                 self.procs, dispatchers=dispatcher_names(plan),
                                 role_of=self.roles.role_of)
        nemesis = self._live_nemesis = self._nemesis()
        applier = None
        if self.hosts is not None and nemesis is not None:
            wires = {h: (p.pid, self.hosts.wire_rules(h)) for h, p in self.hosts.wires.items()}
            applier = Applier({h: self.hosts.ns(h) for h in self.hosts.hosts}, netem=self.netem,
                              wires=wires, addresses=nemesis.addresses)
        hogs = sorted((f for f in plan.faults if f.action == "cpu_hog"), key=lambda f: f.at)
        offsets = [sum(p.duration for p in plan.phases[:i]) for i in range(len(plan.phases))]
        end_of_load = plan.load_duration
        next_sample = 0.0
        while True:
            now = self.now()
            for i, offset in enumerate(offsets):
                if i not in self._started_phases and now >= offset - 0.2:
                    self._start_phase(i, plan.phases[i], offset)
            for outcome in injector.fire_due(now):
                self.roles.fault(outcome.node, outcome.fault.action, now)
                self.store_watch.fault(outcome.node, outcome.fault.action, now)
                failed = "" if outcome.ok else f" failed: {outcome.detail}"
                self.event("fault", outcome.node or outcome.fault.target,
                           outcome.fault.action + failed)
            while hogs and hogs[0].at <= now:
                self._start_hog(hogs.pop(0))
            if nemesis is not None and applier is not None:
                due = nemesis.due(now)
                if due:
                    errors = await asyncio.to_thread(applier.apply, nemesis.desired())
                    for tr in due:
                        self._network_event(tr, errors)
            self._check_crashes()
            await self._poll_roles()
            await self.store_watch.poll(now)
            if now >= next_sample:
                next_sample = max(next_sample + _SAMPLE, now)
                await self._sample(now)
                self._snapshot()
            testers_done = all(n.state is NodeState.EXITED
                               for n in self.procs if n.kind in ("tester", "controller"))
            if now >= end_of_load and len(self._started_phases) == len(offsets):
                if self._stage == "load":
                    self._stage = "drain"
                    self.event("phase", detail="load ends, draining")
                # The testers drain for ``plan.drain`` themselves, then count what is left
                # (drain-timeout) and report: give them the slack to do so before stopping.
                if testers_done or now >= end_of_load + plan.drain + _TESTER_SLACK:
                    break
            await self._sleep(_ROLE_POLL)
        await self._sample(self.now())
        self._stage = "stop"
        self._snapshot()

    def _start_phase(self, index: int, phase: Phase, offset: float) -> None:
        """Start the testers of a phase: a SIPp process per ``sipp`` tester; for the ``sipha``
        testers one load controller and one agent process each."""
        self._started_phases.add(index)
        block = self.block
        assert block is not None
        (self.out / "loadtest").mkdir(exist_ok=True)
        suffix = f"-p{index + 1}" if len(self.plan.phases) > 1 else ""
        sipha = [(i, t) for i, t in enumerate(self.plan.testers, 1) if t.engine == "sipha"]
        if sipha:
            keys = self._tester_keys([t.name for _, t in sipha])
            output = self.out / "loadtest" / f"sipha{suffix}.jsonl"
            http_port = None
            if self.web is not None:  # the page changes the rate through the controller
                http_port = HTTP_PORT + 10 + index
                self._controller_http[index] = f"{block.controller}:{http_port}"
            ctl = self._add(commands.sipha_controller_command(
                self.plan, len(sipha), phase, block, output, f"controller{suffix}",
                http_port=http_port, token=self._control_token, keys=keys))
            ctl.expected_exit = True
            ctl.start()
            self.testers.append(_TesterRun("sipha", index, offset, ctl, output, "sipha"))
            for ti, tester in sipha:
                agent = self._add(commands.sipha_agent_command(
                    tester, ti, block, f"{tester.name}{suffix}", keys=keys))
                agent.expected_exit = True
                agent.start()
        for ti, tester in enumerate(self.plan.testers, 1):
            if tester.engine != "sipp":
                continue
            name = f"{tester.name}{suffix}"
            output = self.out / "loadtest" / f"{name}.sipp-stat.csv"
            cmd = commands.sipp_command(self.plan, tester, ti, phase, block, output)
            node = self._add(commands.NodeCommand(name, "tester", cmd.argv, cmd.address))
            node.expected_exit = True
            node.start()
            self.testers.append(_TesterRun("sipp", index, offset, node, output,
                                           f"sipp:{tester.name}"))
        self.event("phase", detail=f"phase {index + 1}: {phase.rate:g} calls/s per tester")

    # -- netns mode: the nemesis, CPU hogs, fencing ----------------------------------------------

    @property
    def _local(self) -> str | None:
        """The runner's own address for SIP probes: the bridge's in netns mode."""
        return BRIDGE_ADDRESS if self.hosts is not None else None

    @property
    def _fenced_log(self) -> Path:
        return self.out / "fenced.log"

    def _nemesis(self) -> Nemesis | None:
        if self.hosts is None or self.block is None:
            return None
        dispatchers = dispatcher_names(self.plan)
        addresses = {h: [a, *([self.block.service] if h in dispatchers else [])]
                     for h, a in self.hosts.hosts.items()}
        return Nemesis(self.plan.faults, addresses=addresses, groups=group_members(self.plan),
                       dispatchers=dispatchers)

    def _network_event(self, tr: Transition, errors: list[str]) -> None:
        f = tr.fault
        where = (f"{f.link[0]}<->{f.link[1]}" if f.link else
                 " | ".join("+".join(g) for g in f.groups) if f.groups else
                 "d1 | d2" if f.action == "split_pair" else f.target)
        failed = f" failed: {'; '.join(errors)[:300]}" if errors else ""
        failed += " from the live page" if f.name.startswith("page-") else ""
        if tr.started:
            if f.action == "split_pair" and self.roles.active:
                self.roles.fault(self.roles.active, f.action, self.now())
            params = {"loss": f"{f.percent:g}%", "duplicate": f"{f.percent:g}%",
                      "reorder": f"{f.percent:g}%", "corrupt": f"{f.percent:g}%",
                      "delay": f"{f.delay_ms:g}+-{f.jitter_ms:g}ms", "rate": f"{f.kbit:g}kbit",
                      }.get(f.action, "")
            self.event("fault", where, f"{f.action} {params}".strip() + failed,
                       ms=f.duration * 1000.0 if f.duration else None)
        else:
            self.event("heal", where, f"{f.action} healed" + failed)

    def _start_hog(self, f: Fault) -> None:
        name = f"hog-{f.target}-{len(self.procs.of_kind('hog')) + 1}"
        argv = ["stress-ng", "--cpu", str(f.workers), "--timeout", f"{f.duration:g}s", "--quiet"]
        address = self._address_of(f.target)
        node = self._add(commands.NodeCommand(name, "hog", argv, address))
        node.expected_exit = True
        node.start()
        node.expected_exit = True
        self.event("fault", f.target, f"cpu_hog x{f.workers}", ms=f.duration * 1000.0)

    def _address_of(self, host: str) -> str:
        if self.hosts is not None:
            return self.hosts.hosts[host]
        return next((n.address for n in self.procs if n.name == host), "")

    def _read_fenced(self) -> None:
        """Nodes the pair fenced (through the runner's fence script): their death is planned."""
        try:
            lines = self._fenced_log.read_text().splitlines()
        except OSError:
            return
        for line in lines:
            parts = line.split()
            if len(parts) != 3:
                continue
            for n in self.procs:
                if n.name == parts[1] and n.pid == int(parts[2]) and not n.expected_exit:
                    n.expected_exit = True
                    self.event("fenced", n.name, f"fenced by its peer (pid {n.pid})")

    def _check_crashes(self) -> None:
        self._read_fenced()
        for n in self.procs:
            if n.kind not in ("tester", "controller"):
                continue
            if n.state is NodeState.EXITED and not n.exit_reported:
                n.exit_reported = True
                code = n.popen.returncode if n.popen is not None else None
                self.event("exit", n.name, f"tester finished (code {code})")
        for n in self.procs.unexpected_exits():
            code = n.popen.returncode if n.popen is not None else None
            self.event("exit", n.name, f"exited unexpectedly (code {code})")
            if self.plan.on_node_crash == "abort" and n.kind != "tester":
                raise RunAborted(f"{n.name} crashed (exit code {code}): see {n.log_path}")

    async def _poll_roles(self) -> None:
        names = [n.name for n in self.procs.of_kind("dispatcher")]
        if not names:
            return
        ha = self.plan.dispatchers.count == 2
        answers = await asyncio.gather(*(
            self._poller.dispatcher_role(self.procs[n], self.http[n], ha=ha) for n in names
        ))
        t = round(self.now(), 3)
        for name, (role, status) in zip(names, answers, strict=True):
            changed = self.roles.role_of(name) != role
            events = self.roles.observe(name, role, t)
            if status is not None:
                records = status.get("takeovers") or []
                events += self.roles.reported(
                    name, int(status.get("pid") or 0),
                    [r.get("takeover_ms") for r in records if isinstance(r, dict)], t)
            for e in events:
                self._write(EVENTS, e)
                self._log_event(e)
            if changed:
                self._write(ROLES, RoleSample(t=t, node=name, role=role))
        self._flush_takeovers(t)

    def _flush_takeovers(self, t: float, *, all_: bool = False) -> None:
        for e in self.roles.expire(t, all_=all_):
            self._write(EVENTS, e)
            self._log_event(e)

    async def _sample(self, t: float) -> None:
        t = round(t, 3)
        servers = self.procs.of_kind("server")
        samples = await asyncio.gather(*(
            self._poller.server_sample(n, self.http[n.name], t) for n in servers
        ))
        for s in samples:
            self._writers[SERVERS].write(s)
            self._last_server[s.node] = s.active_calls if s.up else -1
        for name in self.roles.roles:
            self._write(ROLES, RoleSample(t=t, node=name, role=self.roles.role_of(name)))
        for n in self.procs:
            if n.popen is not None:
                sample = self._cpu.sample(n, t)
                self._writers[NODES].write(sample)
                self._last_usage[n.name] = (sample.cpu_percent, sample.rss_bytes / 1e6)
        if self.web is not None:  # the page shows suspect/inactive/draining servers
            asking = [d for d in self.roles.roles if self.roles.role_of(d) == "active"]
            self._health = await self._poller.server_states(self.http[asking[0]]) \
                if asking and asking[0] in self.http else {}

    def _snapshot(self) -> None:
        attempted = successful = failed = 0
        reasons: dict[str, int] = {}
        if self._t0:
            for tr in self.testers:
                for c in tr.read(self._t0):
                    attempted += c.attempted
                    successful += c.successful
                    failed += c.failed
                    for k, v in c.failed_by_reason.items():
                        reasons[k] = reasons.get(k, 0) + v
        nodes = []
        for n in self.procs:
            detail = ""
            if n.kind == "dispatcher":
                detail = self.roles.role_of(n.name)
            elif n.kind == "server":
                active = self._last_server.get(n.name)
                detail = "" if active is None else ("down" if active < 0 else f"{active} calls")
            nodes.append((n.name, n.state.value, detail))
        snap = Snapshot(
            name=self.plan.name, profile=self.plan.profile, t=self.now() if self._t0 else 0.0,
            duration=self.plan.load_duration, stage=self._stage, nodes=nodes,
            attempted=attempted, successful=successful, failed=failed,
            failed_by_reason=reasons, events=self._events_text,
        )
        self.progress.update(snap)
        if self.web is not None and self._t0:
            calls = [c for tr in self.testers for c in tr.read(self._t0)]
            roles = {d: self.roles.role_of(d) for d in self.roles.roles}
            self.web.snapshot(snap, calls, dict(self._last_server), roles,
                              dict(self._last_usage), dict(self._health))


def run_plan(plan: Plan, out: Path, *, progress: Progress | None = None,
             web: tuple[str, int] | None = None) -> RunOutcome:
    """Run ``plan`` into ``out`` (blocking); see :class:`Runner`.  In netns mode the hosts
    are created first and removed afterwards, whatever happens; raises RunAborted when they
    cannot be (not root)."""
    if sys.platform != "linux":  # pragma: no cover - loopback blocks need Linux's lo
        raise RunAborted("the test bed needs Linux (127.0.0.0/8 on lo)")
    if plan.hosts.mode == "ssh":  # nodes on other machines (:mod:`.ssh`)
        return run_over_ssh(plan, out, progress=progress, web=web)  # type: ignore[no-any-return]
    if plan.hosts.mode != "netns":
        runner = Runner(plan, out, progress=progress, web=web)
        if runner.web is not None:
            try:
                runner.web.serve()
            except OSError as exc:
                raise RunAborted(f"--web: {exc}") from None
        return asyncio.run(runner.run())
    why = unavailable(euid=os.geteuid(), which=shutil.which)
    if why is not None:
        raise RunAborted(why)
    hosts = Hosts(run_prefix(), netns_hosts(plan, NETNS_BLOCK))
    try:
        hosts.create()
        if plan.dispatchers.count == 1:  # no pair to move it: the lone dispatcher holds it
            hosts.add_address("d1", NETNS_BLOCK.service)
    except RuntimeError as exc:
        hosts.destroy()
        raise RunAborted(f"could not create the run's namespaces: {exc}") from None
    try:
        netem = kernel_has_netem(hosts.bridge)
        if not netem:
            wired = wired_hosts(plan)
            if wired:
                try:
                    hosts.add_wires(wired)
                except RuntimeError as exc:
                    raise RunAborted(f"this kernel has no sch_netem and the bump in the wire "
                                     f"for the delay faults could not start: {exc}") from None
        runner = Runner(plan, out, progress=progress, block=NETNS_BLOCK, hosts=hosts,
                        netem=netem, web=web)
        if runner.web is not None:
            try:
                runner.web.serve()  # in this host's namespace, before entering the run's
            except OSError as exc:
                raise RunAborted(f"--web: {exc}") from None
        with hosts.entered():
            return asyncio.run(runner.run())
    finally:
        left = hosts.destroy()
        if left:
            sys.stderr.write(f"sipha run: namespaces left behind: {left} "
                             "(remove with sipha run --cleanup)\n")
