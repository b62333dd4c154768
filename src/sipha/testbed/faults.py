"""Fault injection: when each planned fault fires and what it does to a node.

Theory of operation
-------------------
:class:`FaultSchedule` is pure: it holds the plan's faults in time order and answers
``due(now)`` (the faults whose time has come, each once) and ``next_deadline()``, with ``now`` in
run seconds passed in, so it runs on virtual time in tests.  :func:`steps_for` turns an action
into the steps a node controller performs; :class:`FaultInjector` resolves the target (the
``active-dispatcher`` alias is looked up when the fault fires, from the roles the dispatchers
report) and performs the steps on a :class:`NodeControl`, which the runner implements with
process groups and tests implement with a recorder.

    action    steps
    kill      SIGKILL to the node's process group (a crash: no goodbye, no state flushed)
    stop      SIGSTOP (a hung node: its sockets stay bound but nothing answers)
    cont      SIGCONT
    start     start the node's process again (no-op if it is running)
    restart   terminate (SIGTERM, then SIGKILL after a grace period) and start
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sipha.testbed.plan import ACTIVE_DISPATCHER, STANDBY_DISPATCHER, Fault

__all__ = [
    "FaultInjector",
    "FaultOutcome",
    "FaultSchedule",
    "NodeControl",
    "Signal",
    "Start",
    "Step",
    "Terminate",
    "steps_for",
]


@dataclass(frozen=True, slots=True)
class Signal:
    signum: signal.Signals


@dataclass(frozen=True, slots=True)
class Terminate:
    grace: float


@dataclass(frozen=True, slots=True)
class Start:
    pass


Step = Signal | Terminate | Start


def steps_for(action: str, *, grace: float = 2.0) -> tuple[Step, ...]:
    """The steps of a fault action; raises ValueError for an unknown action."""
    table: dict[str, tuple[Step, ...]] = {
        "kill": (Signal(signal.SIGKILL),),
        "stop": (Signal(signal.SIGSTOP),),
        "cont": (Signal(signal.SIGCONT),),
        "start": (Start(),),
        "restart": (Terminate(grace), Start()),
    }
    try:
        return table[action]
    except KeyError:
        raise ValueError(
            f"unknown fault action {action!r}; expected one of {sorted(table)}"
        ) from None


class FaultSchedule:
    """The plan's faults in firing order (by time, then by plan order)."""

    __slots__ = ("_faults", "_next")

    def __init__(self, faults: Sequence[Fault]) -> None:
        order = sorted(range(len(faults)), key=lambda i: (faults[i].at, i))
        self._faults = [faults[i] for i in order]
        self._next = 0

    def due(self, now: float) -> list[Fault]:
        """Faults with ``at <= now`` not returned before, in firing order."""
        out: list[Fault] = []
        while self._next < len(self._faults) and self._faults[self._next].at <= now:
            out.append(self._faults[self._next])
            self._next += 1
        return out

    def next_deadline(self) -> float | None:
        """Run time of the next fault, or None when all have fired."""
        if self._next < len(self._faults):
            return self._faults[self._next].at
        return None

    @property
    def pending(self) -> int:
        return len(self._faults) - self._next


class NodeControl(Protocol):
    """What the injector needs from whoever owns the node processes."""

    def send_signal(self, node: str, signum: signal.Signals) -> None: ...

    def terminate(self, node: str, grace: float) -> None: ...

    def start(self, node: str) -> None: ...


@dataclass(frozen=True, slots=True)
class FaultOutcome:
    fault: Fault
    node: str  # the resolved target ("" when an alias resolved to nothing)
    ok: bool
    detail: str


class FaultInjector:
    """Fires due faults on a NodeControl.  ``role_of`` gives a dispatcher's last known role
    (``active``/``standby``/...), used to resolve the dispatcher aliases."""

    __slots__ = ("_control", "_dispatchers", "_role_of", "schedule")

    def __init__(
        self,
        faults: Sequence[Fault],
        control: NodeControl,
        *,
        dispatchers: Sequence[str],
        role_of: Callable[[str], str],
    ) -> None:
        self.schedule = FaultSchedule(faults)
        self._control = control
        self._dispatchers = list(dispatchers)
        self._role_of = role_of

    def resolve(self, target: str) -> str:
        """A node name for ``target``; aliases resolve to the first dispatcher in that role
        ("" if none is)."""
        want = {ACTIVE_DISPATCHER: "active", STANDBY_DISPATCHER: "standby"}.get(target)
        if want is None:
            return target
        return next((d for d in self._dispatchers if self._role_of(d) == want), "")

    def fire_due(self, now: float) -> list[FaultOutcome]:
        """Perform every fault due at ``now``; a failing step is reported, never raised, so
        one fault cannot stop the run."""
        outcomes: list[FaultOutcome] = []
        for fault in self.schedule.due(now):
            node = self.resolve(fault.target)
            if not node:
                outcomes.append(FaultOutcome(fault, "", False, f"no {fault.target} to act on"))
                continue
            try:
                for step in steps_for(fault.action):
                    match step:
                        case Signal(signum):
                            self._control.send_signal(node, signum)
                        case Terminate(grace):
                            self._control.terminate(node, grace)
                        case Start():
                            self._control.start(node)
            except (OSError, ValueError, LookupError) as exc:
                outcomes.append(FaultOutcome(fault, node, False, str(exc)))
            else:
                outcomes.append(FaultOutcome(fault, node, True, fault.action))
        return outcomes
