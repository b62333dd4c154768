"""Node processes: own groups, stop/cont, crash detection, shutdown leaves no process."""

from __future__ import annotations

import signal
from pathlib import Path

import psutil

from sipha.testbed.processes import NodeProcess, NodeState, ProcessSet

# A node that spawns a grandchild, as a load controller spawns agents.
TREE = ["sh", "-c", "sleep 60 & exec sleep 60"]


def _node(tmp_path: Path, name: str, argv: list[str], kind: str = "server") -> NodeProcess:
    return NodeProcess(name=name, kind=kind, argv=argv, log_path=tmp_path / f"{name}.log",
                       cwd=tmp_path)


def test_shutdown_kills_whole_groups_even_stopped_ones(tmp_path: Path) -> None:
    procs = ProcessSet()
    a = procs.add(_node(tmp_path, "a", TREE))
    b = procs.add(_node(tmp_path, "b", ["sh", "-c", "trap '' TERM; sleep 60 & wait"]))
    a.start()
    b.start()
    assert a.pid is not None
    child_pids = [c.pid for c in psutil.Process(a.pid).children(recursive=True)]
    procs.send_signal("a", signal.SIGSTOP)
    assert a.state is NodeState.STOPPED
    procs.shutdown(grace=0.5)
    assert procs.leftovers() == []
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                   for p in child_pids)
    assert a.state is NodeState.EXITED
    assert b.state is NodeState.EXITED  # ignored SIGTERM: killed after the grace


def test_unexpected_exit_is_reported_once_and_planned_kills_are_not(tmp_path: Path) -> None:
    procs = ProcessSet()
    crash = procs.add(_node(tmp_path, "crash", ["sh", "-c", "exit 3"]))
    killed = procs.add(_node(tmp_path, "killed", TREE))
    fenced = procs.add(_node(tmp_path, "fenced", TREE))
    for n in (crash, killed, fenced):
        n.start()
    assert crash.popen is not None
    crash.popen.wait(timeout=10)
    procs.send_signal("killed", signal.SIGKILL)
    procs.send_signal("fenced", signal.SIGSTOP)
    assert fenced.pid is not None
    psutil.Process(fenced.pid).kill()  # its peer fenced it: not a crash
    for n in (killed, fenced):
        assert n.popen is not None
        n.popen.wait(timeout=10)
    assert [n.name for n in procs.unexpected_exits()] == ["crash"]
    assert procs.unexpected_exits() == []
    procs.shutdown(grace=0.5)
    assert procs.leftovers() == []


def test_restart_gives_a_new_group_and_logs_both_starts(tmp_path: Path) -> None:
    procs = ProcessSet()
    n = procs.add(_node(tmp_path, "n", TREE))
    n.start()
    first = n.pid
    procs.terminate("n", 0.5)
    procs.start("n")
    assert n.pid != first
    assert n.state is NodeState.RUNNING
    assert n.pgids == [first, n.pid]
    assert n.log_path.read_text().count("--- start") == 2
    procs.shutdown(grace=0.5)
    assert procs.leftovers() == []
