"""HA configuration errors name the field and the fix; ip mode must say how to fence the peer
(its PID means nothing on another host), and the fencers do what their names say."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sipha.common.config import ConfigError
from sipha.ha.config import HaConfig, validate_ha
from sipha.ha.fence import CommandFencer, NoFencer, PidFencer


def _cfg(**kw: object) -> HaConfig:
    base: dict[str, object] = {
        "node_id": "ds1", "vip": "10.0.0.10", "listen": "10.0.0.1:7001",
        "peer": "10.0.0.2:7001",
    }
    base.update(kw)
    return HaConfig(**base)  # type: ignore[arg-type]


def test_ip_mode_without_a_fence_command_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError) as info:
        validate_ha(_cfg(mode="ip", interface="eth0"), source="pair.toml")
    err = info.value
    assert err.field == "fence_command"
    assert "another host" in err.problem
    assert '"none"' in err.fix
    validate_ha(_cfg(mode="ip", interface="eth0", fence_command="none"))
    validate_ha(_cfg(mode="ip", interface="eth0", fence_command="fence-peer {node}"))
    validate_ha(_cfg(mode="local"))  # local mode fences by PID on this host


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"node_id": ""}, "node_id"), ({"mode": "vrrp"}, "mode"), ({"failback": "x"}, "failback"),
     ({"token": 0.05}, "token"), ({"listen": "nowhere"}, "listen"),
     ({"mode": "ip", "fence_command": "none"}, "interface")],
)
def test_each_bad_field_is_named(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_ha(_cfg(**changes))
    assert info.value.field == field


def test_no_fencer_reports_fenced_and_command_fencer_uses_the_exit_status() -> None:
    async def go() -> tuple[tuple[bool, str], ...]:
        return (
            await NoFencer().fence("ds2", 123),
            await CommandFencer("true {node} {pid}").fence("ds2", 123),
            await CommandFencer("false").fence("ds2", 123),
        )

    none, ok, failed = asyncio.run(go())
    assert none[0]
    assert "not fenced" in none[1]
    assert ok[0]
    assert not failed[0]
    assert "exited 1" in failed[1]


def test_pid_fencer_kills_a_sipha_process_and_refuses_a_stranger() -> None:
    # A process whose command line names sipha (as a dispatcher's does) is killed; one that
    # does not is left alone: a stale PID must not kill an innocent process.
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "sipha"])
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        ok, detail = asyncio.run(PidFencer().fence("ds2", victim.pid))
        assert ok, detail
        assert victim.wait(timeout=5) == -9
        ok, detail = asyncio.run(PidFencer().fence("ds2", stranger.pid))
        assert not ok
        assert "not a sipha process" in detail
        assert stranger.poll() is None
    finally:
        for p in (victim, stranger):
            if p.poll() is None:
                p.kill()
            p.wait(timeout=5)


def test_pid_fencer_counts_an_exited_process_as_fenced_at_once() -> None:
    # The standby's PID watcher fires when the active has exited; the fence that follows must
    # not mistake the exiting process (its command line already empty) for a stranger and
    # wait: that cost a 500 ms takeover once. A zombie, whatever its command line, is fenced.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 5
        while Path(f"/proc/{gone.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        start = time.monotonic()
        ok, detail = asyncio.run(PidFencer().fence("ds2", gone.pid))
        assert ok, detail
        assert "already gone" in detail
        assert time.monotonic() - start < 0.1
    finally:
        gone.wait(timeout=5)
