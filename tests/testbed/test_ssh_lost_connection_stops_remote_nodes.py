"""A remote node started over SSH: signals reach its whole process group, and when the SSH
connection is lost its watchdog stops it on the host (nothing is left running there)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from sipha.testbed.plan import SshHost
from sipha.testbed.processes import NodeState
from sipha.testbed.ssh import SshPool
from sipha.testbed.sshnode import RemoteNode
from tests.testbed.sshd import Sshd, private_sshd


def _pool(sshd: Sshd, tmp: Path) -> SshPool:
    host = SshHost(name="h1", address="127.0.0.1", port=sshd.port, user=sshd.user,
                   key=str(sshd.key), known_hosts=str(sshd.known_hosts),
                   workdir=str(tmp / "remote"))
    (tmp / "local").mkdir()
    pool = SshPool([host], local=tmp / "local", run_name="t")
    pool.open()
    return pool


def _node(pool: SshPool, tmp: Path, name: str, script: str) -> RemoteNode:
    return RemoteNode(name=name, kind="server", argv=[], log_path=tmp / f"{name}.log", cwd=tmp,
                      host="h1", pool=pool, remote_argv=["sh", "-c", script])


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.timeout(60)
def test_signals_reach_the_remote_group_and_a_lost_connection_stops_it(tmp_path: Path) -> None:
    with private_sshd(tmp_path / "sshd") as sshd:
        pool = _pool(sshd, tmp_path)
        try:
            offsets = pool.measure_clocks()
            # Same machine: the offset is within the fastest round trip.
            assert abs(offsets["h1"]) <= pool.rtts["h1"] + 0.01
            a = _node(pool, tmp_path, "a", "echo started; sleep 60 & wait")
            a.start()
            assert a.state is NodeState.RUNNING
            pgid = a.pid
            assert pgid is not None
            members = [p.pid for p in psutil.process_iter() if _pgid(p.pid) == pgid]
            assert len(members) >= 3  # the wrapper, its watchdog, sh and its sleep
            a.signal_group(signal.SIGSTOP)
            assert a.state is NodeState.STOPPED
            a.signal_group(signal.SIGCONT)
            b = _node(pool, tmp_path, "b", "sleep 60")
            b.start()
            b_members = [p.pid for p in psutil.process_iter() if _pgid(p.pid) == b.pid]
            a.signal_group(signal.SIGKILL)  # a kill fault: the whole group, b untouched
            assert all(_gone(pid, 10.0) for pid in members)
            assert b.alive_groups() == [b.pid]
            # The connection drops (as if the runner's host vanished): b stops by itself.
            pool.call(_abort(pool), timeout=10.0)
            assert all(_gone(pid, 15.0) for pid in b_members)
        finally:
            pool.close()
    assert "started" in (tmp_path / "a.log").read_text()


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1


async def _abort(pool: SshPool) -> None:
    pool.connection("h1").abort()
