"""Fault injection on virtual time: order, exactly-once firing, aliases, failing steps."""

from __future__ import annotations

import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.testbed.faults import (
    FaultInjector,
    FaultSchedule,
    Signal,
    Start,
    Terminate,
    steps_for,
)
from sipha.testbed.plan import Fault


class Recorder:
    """A NodeControl that records what it was asked to do."""

    def __init__(self, failing: str = "") -> None:
        self.calls: list[tuple[str, str, object]] = []
        self.failing = failing

    def send_signal(self, node: str, signum: signal.Signals) -> None:
        if node == self.failing:
            raise ProcessLookupError(f"{node} is gone")
        self.calls.append(("signal", node, signum))

    def terminate(self, node: str, grace: float) -> None:
        self.calls.append(("terminate", node, grace))

    def start(self, node: str) -> None:
        self.calls.append(("start", node, None))


def test_steps_per_action() -> None:
    assert steps_for("kill") == (Signal(signal.SIGKILL),)
    assert steps_for("stop") == (Signal(signal.SIGSTOP),)
    assert steps_for("cont") == (Signal(signal.SIGCONT),)
    assert steps_for("start") == (Start(),)
    assert steps_for("restart", grace=1.5) == (Terminate(1.5), Start())
    with pytest.raises(ValueError, match="unknown fault action"):
        steps_for("explode")


def test_schedule_fires_in_time_order_once() -> None:
    faults = [Fault(at=5, action="start", target="d1"), Fault(at=2, action="kill", target="d1"),
              Fault(at=2, action="stop", target="s1")]
    s = FaultSchedule(faults)
    assert s.next_deadline() == 2
    assert s.due(1.999) == []
    assert [f.action for f in s.due(2.0)] == ["kill", "stop"]  # same time: plan order
    assert s.due(2.5) == []
    assert s.next_deadline() == 5
    assert [f.action for f in s.due(100)] == ["start"]
    assert s.next_deadline() is None
    assert s.pending == 0


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.floats(min_value=0, max_value=100), max_size=12),
    ticks=st.lists(st.floats(min_value=0, max_value=120), max_size=30),
)
def test_every_fault_fires_exactly_once_at_or_after_its_time(
    times: list[float], ticks: list[float]
) -> None:
    faults = [Fault(at=t, action="kill", target=f"s{i}") for i, t in enumerate(times)]
    s = FaultSchedule(faults)
    fired: list[tuple[float, Fault]] = []
    for now in [*sorted(ticks), 1000.0]:
        fired += [(now, f) for f in s.due(now)]
    assert sorted(f.target for _, f in fired) == sorted(f.target for f in faults)
    assert all(now >= f.at for now, f in fired)
    assert [f.at for _, f in fired] == sorted(f.at for f in faults)


def test_injector_on_virtual_time_resolves_the_active_dispatcher() -> None:
    roles = {"d1": "active", "d2": "standby"}
    control = Recorder()
    inj = FaultInjector(
        [Fault(at=10, action="kill", target="active-dispatcher"),
         Fault(at=20, action="start", target="d1"),
         Fault(at=30, action="stop", target="active-dispatcher")],
        control, dispatchers=["d1", "d2"], role_of=lambda n: roles[n],
    )
    for now in (0.0, 5.0, 9.9):
        assert inj.fire_due(now) == []
    [out] = inj.fire_due(10.0)
    assert (out.node, out.ok) == ("d1", True)
    roles.update(d1="down", d2="active")
    [out] = inj.fire_due(20.0)
    assert out.node == "d1"
    roles.update(d1="standby")
    [out] = inj.fire_due(31.0)
    assert out.node == "d2"  # the alias follows the roles at firing time
    assert control.calls == [("signal", "d1", signal.SIGKILL), ("start", "d1", None),
                             ("signal", "d2", signal.SIGSTOP)]


def test_injector_reports_failures_instead_of_raising() -> None:
    control = Recorder(failing="s1")
    inj = FaultInjector(
        [Fault(at=1, action="kill", target="s1"),
         Fault(at=1, action="kill", target="standby-dispatcher"),
         Fault(at=1, action="restart", target="s2")],
        control, dispatchers=["d1", "d2"], role_of=lambda n: "active",
    )
    outs = inj.fire_due(1.0)
    assert [(o.node, o.ok) for o in outs] == [("s1", False), ("", False), ("s2", True)]
    assert "gone" in outs[0].detail
    assert "no standby-dispatcher" in outs[1].detail
    assert control.calls == [("terminate", "s2", 2.0), ("start", "s2", None)]
