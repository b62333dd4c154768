"""An agent's share of a distributed SIPp XML scenario run.

Theory of operation
-------------------
The controller's Plan carries an :class:`~sipha.loadtest.scenario.wire.XmlScenario` (the
files' bytes, the options, this agent's slice of the injection rows).  :class:`XmlAgentRunner`
loads the scenario and files from those bytes (checked again here: an agent trusts its
controller's key, not its files), waits for the common ``start_at`` and runs
:func:`~sipha.loadtest.scenario.runner.run_scenario` at this agent's share of the rate, calls
and users.  ``exec command=`` is never loadable on an agent: a controller must not be able to
run shell commands on its agents' hosts.

Each second the engine's cumulative statistics become the second's
:class:`~sipha.loadtest.stats.IntervalStats` (calls started, ended well, failed by reason,
retransmissions), which the agent reports like any other run, so the controller's rows, live
view and verdicts work unchanged; the per-step statistics go back once, in the Done
(:meth:`snapshot`).  The runner has the same face as
:class:`~sipha.loadtest.runner.AgentRunner`: ``run()``, ``stop()``, ``set_rate()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable

from sipha.loadtest.protocol import Plan
from sipha.loadtest.scenario.check import check_injections
from sipha.loadtest.scenario.context import RunConfig
from sipha.loadtest.scenario.engine import ScenarioEngine
from sipha.loadtest.scenario.injection import InjectionFile, InjectionMode, parse_injection
from sipha.loadtest.scenario.loader import load_scenario_text
from sipha.loadtest.scenario.model import Scenario
from sipha.loadtest.scenario.percall import SocketOptions
from sipha.loadtest.scenario.runner import RunBounds, run_scenario
from sipha.loadtest.scenario.schedule import RateSchedule
from sipha.loadtest.scenario.wire import ScenarioSnapshot, XmlScenario, to_snapshot
from sipha.loadtest.stats import FailureReason, IntervalStats

__all__ = ["XmlAgentRunner", "failure_key", "load_shipped"]

# SIPp's failure reasons in the load tester's closed vocabulary (per-second rows, verdicts);
# the per-step statistics keep SIPp's own names.
_REASONS = {
    "unexpected": FailureReason.UNEXPECTED_MESSAGE.value,
    "max_udp_retrans": FailureReason.TIMEOUT_B.value,
    "recv_timeout": FailureReason.TIMEOUT_B.value,
    "tcp_closed": FailureReason.TRANSPORT_ERROR.value,
}


def failure_key(reason: str) -> str:
    """A scenario's failure reason as a load-tester reason key."""
    return _REASONS.get(reason, FailureReason.OTHER.value)


def load_shipped(xml: XmlScenario) -> tuple[Scenario, list[InjectionFile]]:
    """The scenario and this share's injection files.  Raises
    :class:`~sipha.loadtest.scenario.errors.ScenarioError` for a bad file and ``ValueError``
    for a share with no row."""
    scenario = load_scenario_text(xml.scenario.data, file=xml.scenario.name, allow_exec=False)
    files = [parse_injection(f.name, f.data) for f in xml.injections]
    for f in files:
        if f.mode is not InjectionMode.RANDOM and xml.share_count > 1:
            f.share(xml.share_index, xml.share_count)
    by_name = {f.name: f for f in files}
    for name, field_no in xml.infindex:
        if name in by_name:
            by_name[name].build_index(field_no)
    check_injections(scenario, files, users=xml.run.users)
    return scenario, files


class XmlAgentRunner:
    """Runs this agent's share of an XML scenario plan; ``await run()`` returns its totals."""

    def __init__(self, plan: Plan, *,
                 on_second: Callable[[int, IntervalStats], None] | None = None) -> None:
        if plan.xml is None:
            raise ValueError("the plan carries no XML scenario")
        self.plan = plan
        self.xml = plan.xml
        self.scenario, self.files = load_shipped(plan.xml)
        self.on_second = on_second
        self.totals = IntervalStats()
        self.engine: ScenarioEngine | None = None
        self._stop = asyncio.Event()
        self._second = 0
        self._seen = (0, 0, 0)  # created, successful, retransmissions so far
        self._failed: Counter[str] = Counter()

    def stop(self) -> None:
        """End the run now (SIPp's quit: calls in progress are left, neither ok nor failed)."""
        self._stop.set()

    def set_rate(self, rate: float) -> None:
        raise ValueError("an XML scenario keeps its plan's rate (SIPp's -r, -rate_increase)")

    def snapshot(self) -> ScenarioSnapshot | None:
        return None if self.engine is None else to_snapshot(self.engine.stats)

    def _config(self) -> RunConfig:
        o, plan = self.xml.run, self.plan
        return RunConfig(
            local_ip=o.local_ip, local_port=o.local_port, remote_ip=plan.target_host,
            remote_port=plan.target_port, transport=o.transport, service=o.service,
            media_ip=o.media_ip, media_port=o.media_port, users=o.users, pause_ms=o.pause_ms,
            recv_timeout=o.recv_timeout, max_retrans=o.max_retrans,
            max_retrans_invite=o.max_retrans_invite, base_cseq=o.base_cseq,
            auth_username=o.auth_username, auth_password=o.auth_password,
            behaviors=frozenset(o.behaviors), auto_answer=o.auto_answer, cid_str=o.cid_str)

    def _bounds(self) -> RunBounds:
        o, plan = self.xml.run, self.plan
        schedule = RateSchedule(rate=plan.rate * o.rate_period, period=o.rate_period,
                                increase=o.rate_increase, interval=o.rate_interval,
                                rate_max=o.rate_max, quit_at_max=o.quit_at_max)
        return RunBounds(rate=plan.rate, schedule=schedule, timeout=o.timeout,
                         max_calls=plan.max_calls, limit=plan.max_concurrent,
                         duration=plan.duration, drain_timeout=plan.options.drain_timeout)

    def _on_period(self, engine: ScenarioEngine, _wall: float) -> None:
        self.engine = engine
        s = engine.stats
        retrans = s.retransmissions
        created, successful, retrans_before = self._seen
        iv = IntervalStats()
        iv.calls_attempted = s.created - created
        iv.calls_successful = s.successful - successful
        iv.retransmissions = retrans - retrans_before
        iv.concurrent_calls = engine.current_calls
        for reason, n in s.failed.items():
            for _ in range(n - self._failed[reason]):
                iv.record_failure(failure_key(reason))
        self._failed = Counter(s.failed)
        self._seen = (s.created, s.successful, retrans)
        self.totals.extend(iv)
        if self.on_second is not None:
            self.on_second(self._second, iv)
        self._second += 1

    async def run(self) -> IntervalStats:
        """Wait for the common start, run, return the totals.  Raises ``OSError`` if the
        local socket cannot be bound."""
        delay = self.plan.start_at - time.time()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stop.wait()
        if self._stop.is_set():
            return self.totals
        o = self.xml.run
        self.engine = await run_scenario(
            self.scenario, self._config(), self._bounds(), files=self.files,
            seed=self.plan.seed, stop=self._stop, on_period=self._on_period, period=1.0,
            sockets=SocketOptions(per_call=o.per_call, local_ips=tuple(o.local_ips),
                                  max_reconnect=o.max_reconnect,
                                  reconnect_sleep=o.reconnect_sleep,
                                  reconnect_close=o.reconnect_close))
        return self.totals
