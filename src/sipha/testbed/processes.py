"""Node processes of a run: each in its own process group, tracked until the group is empty.

Every node is started with ``start_new_session=True``, so its PID is also the ID of a process
group holding it and anything it spawns (a load controller's agents, a shell's children).
Signals go to the group; shutdown terminates every group (SIGCONT first, so a stopped node can
act on the SIGTERM), waits, then SIGKILLs what is left.  :meth:`ProcessSet.leftovers` is the
proof the run left nothing behind: the groups in which some process still exists.

A node's state is ours to know: ``stopped`` after a SIGSTOP we sent, ``expected_exit`` when we
killed or terminated it, so the runner can tell a planned death from a crash.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

__all__ = ["NodeProcess", "NodeState", "ProcessSet", "group_alive"]


class NodeState(enum.Enum):
    NOT_STARTED = "not-started"
    RUNNING = "running"
    STOPPED = "stopped"  # SIGSTOPped by a fault
    EXITED = "exited"


def group_alive(pgid: int) -> bool:
    """True if a live process (not a zombie) is still in process group ``pgid``.

    Zombies do not count: a killed grandchild stays one until its new parent reaps it, and in
    a container PID 1 may never do so; it holds no socket and uses no CPU.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


@dataclass
class NodeProcess:
    """One node: how to start it, and the process it currently runs as."""

    name: str
    kind: str
    argv: list[str]
    log_path: Path
    cwd: Path
    address: str = ""
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None
    stopped: bool = False
    expected_exit: bool = False
    exit_reported: bool = False
    pgids: list[int] = field(default_factory=list)  # every group this node ever led
    starts: int = 0

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def state(self) -> NodeState:
        if self.popen is None:
            return NodeState.NOT_STARTED
        if self.popen.poll() is not None:
            return NodeState.EXITED
        return NodeState.STOPPED if self.stopped else NodeState.RUNNING

    def start(self) -> None:
        """Start (again): a fresh process in a new group, output appended to the log."""
        if self.state in (NodeState.RUNNING, NodeState.STOPPED):
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log: IO[bytes] = self.log_path.open("ab")
        try:
            log.write(f"--- start {self.starts + 1}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                start_new_session=True,
            )
        finally:
            log.close()  # the child has its own copy
        self.pgids.append(self.popen.pid)
        self.starts += 1
        self.stopped = False
        self.expected_exit = False
        self.exit_reported = False

    def signal_group(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the node's current group; raises LookupError if never started."""
        if self.popen is None:
            raise LookupError(f"{self.name} was never started")
        if signum in (signal.SIGKILL, signal.SIGTERM):
            self.expected_exit = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)
        if signum == signal.SIGSTOP:
            self.stopped = True
        elif signum == signal.SIGCONT:
            self.stopped = False

    def terminate(self, grace: float) -> None:
        """SIGTERM the group (after SIGCONT), wait up to ``grace`` s, then SIGKILL it."""
        if self.popen is None:
            return
        self.expected_exit = True
        pgid = self.popen.pid
        for sig in (signal.SIGCONT, signal.SIGTERM):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
        self.stopped = False
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5.0)

    # -- the end of a run (ProcessSet.shutdown); a remote node (.ssh) does these over SSH --

    def begin_stop(self) -> None:
        """SIGCONT then SIGTERM to the current group, without waiting."""
        if self.popen is None:
            return
        self.expected_exit = True
        for sig in (signal.SIGCONT, signal.SIGTERM):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
        self.stopped = False

    def wait_exit(self, timeout: float) -> None:
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)

    def kill_groups(self) -> None:
        """SIGKILL every group this node ever led, and reap."""
        for pgid in self.pgids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        self.wait_exit(5.0)

    def alive_groups(self) -> list[int]:
        return [pgid for pgid in self.pgids if group_alive(pgid)]


class ProcessSet:
    """The nodes of one run by name; implements the fault injector's NodeControl."""

    def __init__(self) -> None:
        self._nodes: dict[str, NodeProcess] = {}
        # Run once every group is gone (the SSH hosts collect their result files then).
        self.after_shutdown: list[Callable[[], None]] = []

    def add(self, node: NodeProcess) -> NodeProcess:
        if node.name in self._nodes:
            raise ValueError(f"duplicate node name {node.name!r}")
        self._nodes[node.name] = node
        return node

    def __getitem__(self, name: str) -> NodeProcess:
        try:
            return self._nodes[name]
        except KeyError:
            raise LookupError(f"no node named {name!r}") from None

    def __iter__(self) -> Iterator[NodeProcess]:
        return iter(list(self._nodes.values()))

    def of_kind(self, kind: str) -> list[NodeProcess]:
        return [n for n in self._nodes.values() if n.kind == kind]

    # -- NodeControl ---------------------------------------------------------------------------

    def send_signal(self, node: str, signum: signal.Signals) -> None:
        self[node].signal_group(signum)

    def terminate(self, node: str, grace: float) -> None:
        self[node].terminate(grace)

    def start(self, node: str) -> None:
        self[node].start()

    # -- the end ----------------------------------------------------------------------------------

    def unexpected_exits(self) -> list[NodeProcess]:
        """Nodes that exited without us killing them and were not reported yet.  A node that
        was stopped and then died was fenced by its peer: that is expected, not a crash."""
        out = []
        for n in self._nodes.values():
            if n.state is NodeState.EXITED and not n.exit_reported:
                n.exit_reported = True
                if not n.expected_exit and not n.stopped:
                    out.append(n)
        return out

    def shutdown(self, *, grace: float = 3.0, order: Sequence[str] = ()) -> None:
        """Terminate every group: first the kinds in ``order`` (each kind together), then the
        rest; SIGKILL what outlives ``grace``.  Safe to call twice."""
        kinds = [*order, *sorted({n.kind for n in self._nodes.values()} - set(order))]
        for kind in kinds:
            nodes = [n for n in self._nodes.values() if n.kind == kind]
            for n in nodes:
                n.begin_stop()
            deadline = time.monotonic() + grace
            for n in nodes:
                n.wait_exit(max(0.0, deadline - time.monotonic()))
        for n in self._nodes.values():
            n.kill_groups()
        while self.after_shutdown:
            self.after_shutdown.pop(0)()

    def leftovers(self) -> list[int]:
        """Process groups we created that still hold a process (should be empty after
        shutdown)."""
        return [pgid for n in self._nodes.values() for pgid in n.alive_groups()]
