"""Over arbitrary sequences of faults and commands, fencing keeps the pair to one active."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sipha.ha.membership import Failback, Role

from .sim import World

NAMES = ("a", "b")

op = st.one_of(
    st.tuples(st.just("tick"), st.floats(min_value=0.001, max_value=0.6)),
    st.tuples(st.sampled_from(["kill", "stop", "cont", "restart", "promote", "demote",
                               "mute", "unmute", "cut_stream"]), st.sampled_from(NAMES)),
)


def apply(world: World, o: tuple[str, object]) -> None:
    kind, arg = o
    if kind == "tick":
        assert isinstance(arg, float)
        world.advance(arg)
        return
    assert isinstance(arg, str)
    node = world.nodes[arg]
    if kind == "kill":
        world.kill(arg)
    elif kind == "stop":
        node.stopped = True
    elif kind == "cont":
        node.stopped = False
    elif kind == "restart" and not node.alive:
        world.start(arg, node.priority)
    elif kind == "promote" and world.running(node):
        world.run(node, node.m.promote_requested(world.now))
    elif kind == "demote" and world.running(node):
        world.run(node, node.m.demote_requested(world.now))
    elif kind == "mute":
        node.drop_outgoing = True
    elif kind == "unmute":
        node.drop_outgoing = False
    elif kind == "cut_stream" and world.running(node):
        world.cut_stream(arg)


def heal(world: World) -> None:
    # Continuing two stopped nodes at once can make one fence the other (a STONITH race):
    # the fenced node is dead, and an operator restarts it; so heal twice.
    for _ in range(2):
        for name, node in world.nodes.items():
            node.stopped = False
            node.drop_outgoing = False
            if not node.alive:
                world.start(name, node.priority)
        world.advance(3.0)


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(op, max_size=40), failback=st.sampled_from(list(Failback)))
def test_never_two_actives_and_one_active_after_healing(
    ops: list[tuple[str, object]], failback: Failback
) -> None:
    world = World(failback=failback)
    world.start("a", 200)
    world.start("b", 100)
    for o in ops:
        apply(world, o)
    assert world.violations == []
    heal(world)
    assert world.violations == []
    assert len(world.actives()) == 1
    roles = sorted(n.m.role.value for n in world.nodes.values())
    assert roles == ["active", "standby"]


def test_higher_priority_starts_active() -> None:
    world = World()
    world.start("a", 200)
    world.start("b", 100)
    world.advance(1.0)
    assert world.actives() == ["a"]


def test_kill_of_the_active_is_taken_over_well_within_the_token() -> None:
    world = World()
    world.start("a", 200)
    world.start("b", 100)
    world.advance(1.0)
    world.kill("a")
    # The stream's end (one latency) plus crash_confirm (0.02), not the token (0.3).
    world.advance(0.015)
    assert world.actives() == []
    world.advance(0.01)
    assert world.actives() == ["b"]


def test_a_hung_active_is_still_judged_by_the_token() -> None:
    world = World()
    world.start("a", 200)
    world.start("b", 100)
    world.advance(1.0)
    world.nodes["a"].stopped = True  # SIGSTOP: its connections stay open
    world.advance(0.19)  # the last heartbeat was at most one interval (0.1) before the stop
    assert world.nodes["b"].m.role is Role.STANDBY
    assert world.nodes["a"].alive
    world.advance(0.12)
    assert world.actives() == ["b"]
    assert not world.nodes["a"].alive  # fenced


def test_a_broken_stream_of_a_live_active_never_makes_two_actives() -> None:
    world = World()
    world.start("a", 200)
    world.start("b", 100)
    world.advance(1.0)
    world.cut_stream("a")  # a heartbeat may not come within crash_confirm: b fences a
    world.advance(1.0)
    assert world.violations == []
    assert len(world.actives()) == 1


def test_stopped_active_is_fenced_then_taken_over() -> None:
    world = World()
    world.start("a", 200)
    world.start("b", 100)
    world.advance(1.0)
    world.nodes["a"].stopped = True
    world.advance(0.5)
    assert not world.nodes["a"].alive  # fenced: SIGKILL
    assert world.actives() == ["b"]


def test_sticky_restart_stays_standby_preempt_takes_back() -> None:
    for failback, expect in ((Failback.STICKY, "b"), (Failback.PREEMPT, "a")):
        world = World(failback=failback)
        world.start("a", 200)
        world.start("b", 100)
        world.advance(1.0)
        world.kill("a")
        world.advance(1.0)
        world.start("a", 200)
        world.nodes["a"].m.caught_up = True  # replication done
        world.advance(2.0)
        assert world.actives() == [expect], failback
        assert world.nodes["a"].m.role in (Role.ACTIVE, Role.STANDBY)
        assert world.violations == []
