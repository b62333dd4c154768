"""A node of a run on another machine: started, signalled and stopped over SSH.

Theory of operation
-------------------
:class:`RemoteNode` is a :class:`~sipha.testbed.processes.NodeProcess` whose process runs on an
``[[hosts.ssh]]`` host, so the runner, the fault injector and :class:`ProcessSet` drive it as a
local one.  Its command runs under a small ``sh`` wrapper (:data:`WRAPPER`), started by sshd as
the leader of a session of its own, so the wrapper's PID is also the process group of the node:

* the wrapper prints ``sipha-remote pid PGID`` first, then the node's output follows on the
  channel and is appended to the node's local log;
* a fault's signal goes to the whole group (``kill -s SIG -- -PGID`` over another channel):
  kill, stop, cont as on this machine; the wrapper dies with the node on SIGKILL, and the
  channel's close is the node's exit;
* a watchdog in the group reads the channel's stdin, which only ever ends when the channel or
  the SSH connection does: it then TERMs and, 2 s later, KILLs the group.  So a lost
  connection (or a runner killed outright) stops every remote process by itself.

Every SSH operation runs on the pool's own event loop (:class:`~sipha.testbed.ssh.SshPool`);
the synchronous methods here wait for it with a bound (``pool.call``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sipha.testbed.processes import NodeProcess, NodeState

if TYPE_CHECKING:
    from sipha.testbed.ssh import SshPool

__all__ = ["WRAPPER", "RemoteNode", "remote_command"]

# $1: the working directory; the rest: the node's argv.  `$$` is the session (and group)
# leader sshd made of this shell, so `kill -- -$$` reaches the node and all it spawns.
WRAPPER = r"""cd "$1" || exit 97
shift
exec 3<&0
"$@" </dev/null 2>&1 &
node=$!
echo "sipha-remote pid $$"
(trap '' TERM HUP; read -r _ <&3; kill -s TERM -- -$$ 2>/dev/null; sleep 2;
 kill -s KILL -- -$$ 2>/dev/null) </dev/null >/dev/null 2>&1 &
wait "$node"
status=$?
exit "$status"
"""
_MARK = b"sipha-remote pid "


def remote_command(workdir: str, argv: list[str]) -> str:
    """The command line sshd runs for a node (its login shell parses it)."""
    return "exec sh -c " + shlex.join([WRAPPER, "sipha-node", workdir, *argv])


@dataclass(eq=False)
class RemoteNode(NodeProcess):
    """A node running on ``host`` of ``pool`` (see the module docstring)."""

    host: str = ""
    pool: SshPool | None = None
    remote_argv: list[str] = field(default_factory=list)
    clock_offset: float = 0.0  # the host's clock minus ours, seconds
    remote_pgids: list[int] = field(default_factory=list)
    _proc: Any = None
    _exited: bool = False
    _exit_code: int | None = None
    _follower: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.remote_pgids[-1] if self.remote_pgids else None

    @property
    def state(self) -> NodeState:
        if not self.remote_pgids and self._proc is None:
            return NodeState.NOT_STARTED
        if self._exited:
            return NodeState.EXITED
        return NodeState.STOPPED if self.stopped else NodeState.RUNNING

    @property
    def exit_code(self) -> int | None:
        return self._exit_code

    def _pool(self) -> SshPool:
        if self.pool is None:
            raise LookupError(f"{self.name}: no SSH pool")
        return self.pool

    # -- start ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.state in (NodeState.RUNNING, NodeState.STOPPED):
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts + 1} on {self.host}: "
                      f"{' '.join(self.remote_argv)}\n".encode())
        pool = self._pool()
        self._exited, self._exit_code = False, None
        pgid = pool.call(self._start(pool), timeout=30.0)
        self.remote_pgids.append(pgid)
        self.starts += 1
        self.stopped = False
        self.expected_exit = False
        self.exit_reported = False

    async def _start(self, pool: SshPool) -> int:
        conn = pool.connection(self.host)
        workdir = await pool.prepare(self.host)
        proc = await conn.create_process(remote_command(workdir, self.remote_argv),
                                         encoding=None, stderr=-2)  # asyncssh.STDOUT
        self._proc = proc
        first = await asyncio.wait_for(proc.stdout.readline(), timeout=20.0)
        if not first.startswith(_MARK):
            proc.close()
            raise RuntimeError(f"{self.name} did not start on {self.host}: {first[:200]!r}")
        pgid = int(first[len(_MARK):].strip())
        self._follower = pool.spawn(self._follow(proc))
        return pgid

    async def _follow(self, proc: Any) -> None:
        """Append the node's output to its log until the channel ends; that is its exit."""
        try:
            with self.log_path.open("ab") as log:
                while True:
                    chunk = await proc.stdout.read(65536)
                    if not chunk:
                        break
                    log.write(chunk)
                    log.flush()
            result = await proc.wait()
            code = result.exit_status
            self._exit_code = code if code is not None and code >= 0 else None
        except Exception as exc:  # the connection died: gone for us (and it stops itself)
            self._exit_code = None
            with contextlib.suppress(OSError), self.log_path.open("ab") as log:
                log.write(f"--- lost the SSH channel to {self.host}: {exc!r}\n".encode())
        finally:
            self._exited = True

    # -- signals ----------------------------------------------------------------------------

    def signal_group(self, signum: signal.Signals) -> None:
        if self.pid is None:
            raise LookupError(f"{self.name} was never started")
        if signum in (signal.SIGKILL, signal.SIGTERM):
            self.expected_exit = True
        self._send([signum], [self.pid])
        if signum == signal.SIGSTOP:
            self.stopped = True
        elif signum == signal.SIGCONT:
            self.stopped = False

    def _send(self, signums: list[signal.Signals], pgids: list[int]) -> None:
        """The signals, in order, to the groups: one SSH channel (a login shell each)."""
        if not pgids:
            return
        groups = " ".join(f"-{p}" for p in pgids)
        script = "; ".join(f"kill -s {signal.Signals(s).name.removeprefix('SIG')} -- {groups}"
                           for s in signums)
        self._pool().call(self._pool().run(self.host, f"{{ {script}; }} 2>/dev/null"),
                          timeout=10.0)

    def terminate(self, grace: float) -> None:
        self.begin_stop()
        self.wait_exit(grace)
        self.kill_groups()

    def begin_stop(self) -> None:
        if self.pid is None or self._exited:
            return
        self.expected_exit = True
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self._send([signal.SIGCONT, signal.SIGTERM], [self.pid])
        self.stopped = False

    def wait_exit(self, timeout: float) -> None:
        if self._proc is None or self._exited:
            return
        with contextlib.suppress(TimeoutError, OSError, RuntimeError):
            self._pool().call(self._wait_exited(), timeout=max(timeout, 0.01))

    async def _wait_exited(self) -> None:
        if self._follower is not None:
            await asyncio.shield(self._follower)

    def kill_groups(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self._send([signal.SIGKILL], self.remote_pgids)
        self.wait_exit(5.0)

    def alive_groups(self) -> list[int]:
        """The remote groups that still hold a live process (asked over SSH; a host that
        cannot be asked counts its groups as alive: nothing proves them gone).  Zombies do not
        count, as on this machine (:func:`~sipha.testbed.processes.group_alive`)."""
        if not self.remote_pgids:
            return []
        try:
            out = self._pool().call(self._pool().run(self.host, "ps -eo pgid=,stat="),
                                    timeout=10.0)
        except (OSError, RuntimeError, TimeoutError):
            return list(self.remote_pgids)
        alive = set()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit() and not parts[1].startswith("Z"):
                alive.add(int(parts[0]))
        return [p for p in self.remote_pgids if p in alive]


def local_path_in(path: str, local: Path, remote: str) -> str:
    """``path`` with the local results folder replaced by the host's working directory."""
    return path.replace(str(local), remote)
