"""Fencing the peer before taking its address (split-brain protection) and watching its PID.

* `PidFencer` (local mode, and namespaces on one host): the peer announces its PID in its
  heartbeats; fencing sends it SIGKILL (which also ends a SIGSTOPped, hung process) and waits,
  through a pidfd, until it has exited, so its sockets are closed when we bind. A PID whose
  command line does not look like a sipha process is refused: a stale or forged PID must not
  kill an innocent process. A PID that no longer exists is already fenced.
* `CommandFencer` (other modes): runs a configured command, like Pacemaker's STONITH agents,
  with ``{node}`` and ``{pid}`` substituted; exit status 0 means fenced. `ip` mode requires one
  (or ``none``, `NoFencer`): a PID means nothing on another host.
* `PidWatcher`: in local mode the standby also watches the active's PID through a pidfd, so a
  SIGKILLed active is noticed at once instead of after the heartbeat token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import shlex
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

__all__ = ["CommandFencer", "Fencer", "NoFencer", "PidFencer", "PidWatcher"]

log = logging.getLogger("sipha.ha.fence")


class Fencer(Protocol):
    async def fence(self, node_id: str, pid: int) -> tuple[bool, str]:
        """Make sure the peer holds nothing; (fenced?, detail). Never raises."""
        ...


def _has_exited(pid: int) -> bool:
    """True once every thread of ``pid`` has exited (its pidfd is readable), or it is gone.

    The pidfd is the authority: /proc alone misleads in the instant a parent reaps its child,
    when the state reads "X" and the command line is already empty."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    try:
        return bool(select.select([fd], [], [], 0)[0])
    finally:
        os.close(fd)


def _looks_like_sipha(pid: int, marker: str) -> bool | None:
    """True/False from its command line, None when the process has exited (a zombie too:
    its sockets are closed, only its parent's wait() is missing)."""
    if _has_exited(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return False
    if not cmdline and _has_exited(pid):
        return None  # it exited between the two looks (an exiting process has no cmdline)
    return marker.encode() in cmdline


async def _wait_exit(pid: int, limit: float) -> bool:
    """Wait until ``pid`` has exited; True if it did within ``limit`` seconds."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not done.done():
            done.set_result(None)

    try:
        loop.add_reader(fd, readable)
        try:
            async with asyncio.timeout(limit):
                await done
            return True
        except TimeoutError:
            return False
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)


class PidFencer:
    def __init__(self, *, marker: str = "sipha", timeout: float = 2.0) -> None:
        self.marker = marker
        self.timeout = timeout
        self.kills = 0

    async def fence(self, node_id: str, pid: int) -> tuple[bool, str]:
        if pid <= 1 or pid == os.getpid():
            return False, f"refusing to fence pid {pid}"
        looks = _looks_like_sipha(pid, self.marker)
        if looks is None:
            return True, f"pid {pid} of {node_id} already gone"
        if not looks:
            return False, f"pid {pid} is not a {self.marker} process; not killing it"
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return True, f"pid {pid} of {node_id} already gone"
        except OSError as exc:
            return False, f"kill {pid}: {exc}"
        self.kills += 1
        if await _wait_exit(pid, self.timeout):
            return True, f"SIGKILLed pid {pid} of {node_id}"
        return False, f"pid {pid} still there {self.timeout} s after SIGKILL"


class NoFencer:
    """``fence_command = "none"``: the operator accepts the split-brain risk."""

    async def fence(self, node_id: str, pid: int) -> tuple[bool, str]:
        return True, f"{node_id} not fenced (fence_command = none)"


class CommandFencer:
    def __init__(self, command: str, *, timeout: float = 10.0) -> None:
        self.command = command
        self.timeout = timeout

    async def fence(self, node_id: str, pid: int) -> tuple[bool, str]:
        argv = [a.format(node=node_id, pid=pid) for a in shlex.split(self.command)]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
        except OSError as exc:
            return False, f"fence command {argv[0]!r}: {exc}"
        try:
            async with asyncio.timeout(self.timeout):
                out, _ = await proc.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return False, f"fence command timed out after {self.timeout} s"
        text = out.decode(errors="replace").strip()
        if proc.returncode == 0:
            return True, f"fence command succeeded {text}".strip()
        return False, f"fence command exited {proc.returncode}: {text}"


class PidWatcher:
    """Calls ``on_exit`` once when the watched PID exits (pidfd; Linux >= 5.3)."""

    def __init__(self, on_exit: Callable[[], None]) -> None:
        self.on_exit = on_exit
        self.pid = 0
        self._fd = -1

    def watch(self, pid: int) -> None:
        if pid == self.pid:
            return
        self.stop()
        if pid <= 1:
            return
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return  # gone already (the heartbeat token will tell) or not ours to see
        self.pid = pid
        self._fd = fd
        asyncio.get_running_loop().add_reader(fd, self._fired)

    def _fired(self) -> None:
        self.stop()
        self.on_exit()

    def stop(self) -> None:
        if self._fd >= 0:
            loop = asyncio.get_running_loop()
            loop.remove_reader(self._fd)
            os.close(self._fd)
        self._fd = -1
        self.pid = 0
