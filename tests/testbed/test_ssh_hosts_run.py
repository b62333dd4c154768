"""``[hosts] mode = "ssh"``: a plan whose nodes all run on a "remote" host, reached through an
sshd the test starts on loopback (its own host key and user key; known_hosts checked).

The run must complete with its calls counted from the files collected from the host, a kill
fault must reach the remote server (the dispatchers see it down), the clock offset must be
reported, and no process of the run may be left on the host afterwards.  A host whose key is
not the one in known_hosts, and a host whose sipha is another version, are refused before
anything starts.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import psutil
import pytest

from sipha.common.config import ConfigError
from sipha.testbed.commands import to_toml
from sipha.testbed.plan import Plan, load_plan, parse_plan
from sipha.testbed.progress import Progress
from sipha.testbed.runner import RunAborted, run_plan
from tests.testbed.sshd import Sshd, private_sshd

SIPHA = str(Path(sys.executable).with_name("sipha"))
KILL_AT = 2.0


def _plan(sshd: Sshd, workdir: Path, *, sipha: str = SIPHA, known_hosts: Path | None = None,
          faults: bool = True) -> Plan:
    data: dict[str, object] = {
        "name": "ssh-small",
        "drain": 2,
        "servers": {"count": 2},
        "dispatchers": {"count": 1},
        "testers": [{"name": "t1"}],
        "phases": [{"duration": 4, "rate": 10, "hold": 0.5}],
        "faults": [{"at": KILL_AT, "action": "kill", "target": "s2"}] if faults else [],
        "hosts": {"mode": "ssh", "ssh": [{
            "name": "h1", "address": "127.0.0.1", "port": sshd.port, "user": sshd.user,
            "key": str(sshd.key), "known_hosts": str(known_hosts or sshd.known_hosts),
            "sipha": sipha, "workdir": str(workdir),
            "nodes": ["s1", "s2", "d1", "controller", "t1"],
        }]},
    }
    return parse_plan(data, source="test")


def _without_none(value: Any) -> Any:
    """Plain plan data without the unset (None) criteria TOML cannot write."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _processes_in(folder: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and any(
                    str(folder) in arg for arg in p.info["cmdline"] or ()):
                found.append(p)
        except psutil.Error:
            continue
    return found


@pytest.mark.timeout(90)
def test_plan_runs_on_a_host_over_ssh(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    with private_sshd(tmp_path / "sshd") as sshd:
        plan = _plan(sshd, remote)
        out = tmp_path / "results"
        outcome = run_plan(plan, out, progress=Progress(every=100))
        assert outcome.status == "complete", outcome.detail
        assert outcome.leftover_pids == []
        assert _processes_in(remote) == []
    # The nodes ran on the host: their command lines named its folder, not the results'.
    assert "on h1" in (out / "logs" / "s1.log").read_text()
    assert (remote / "config" / "s1.toml").exists()
    # Results collected from the host: the load controller's file, read into calls.jsonl.
    assert (out / "loadtest" / "sipha.jsonl").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calls_successful"] > 0
    # The kill reached the remote s2: its fault succeeded, and s2 answered no sample after.
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    kills = [e for e in events if e["kind"] == "fault" and e["node"] == "s2"]
    assert [e["detail"] for e in kills] == ["kill"]
    samples = [json.loads(line) for line in (out / "servers.jsonl").read_text().splitlines()]
    later = [s for s in samples if s["node"] == "s2" and s["t"] > kills[0]["t"] + 1.0]
    assert later
    assert not any(s["up"] for s in later)
    # The host's clock offset is in the run's events (the report lists them).
    clocks = [e for e in events if e["kind"] == "clock"]
    assert [e["node"] for e in clocks] == ["h1"]
    assert "clock offset" in clocks[0]["detail"]
    # The keys of the run do not stay on the host.
    assert not (remote / "keys").exists()


@pytest.mark.timeout(60)
def test_unknown_host_key_and_other_version_are_refused(tmp_path: Path) -> None:
    with private_sshd(tmp_path / "sshd") as sshd:
        wrong = tmp_path / "wrong_known_hosts"
        other = (tmp_path / "sshd" / "host_key.pub").read_text().split()
        # Another key under the host's name: the connection must be refused.
        wrong.write_text(f"[127.0.0.1]:{sshd.port} ssh-rsa "
                         "AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7" + other[1][-20:] + "\n")
        with pytest.raises(RunAborted, match="cannot connect"):
            run_plan(_plan(sshd, tmp_path / "r1", known_hosts=wrong), tmp_path / "o1")
        fake = tmp_path / "old-sipha"
        fake.write_text("#!/bin/sh\necho sipha 0.0.1\n")
        fake.chmod(0o755)
        with pytest.raises(RunAborted, match=r"sipha 0\.0\.1"):
            run_plan(_plan(sshd, tmp_path / "r2", sipha=str(fake)), tmp_path / "o2")
        assert not (tmp_path / "r2").exists()  # nothing was started there


def test_servers_on_two_hosts_with_sqlite_are_refused(tmp_path: Path) -> None:
    data = msgspec.to_builtins(load_plan(Path(__file__).resolve().parents[2]
                                         / "plans" / "smoke.toml"))
    host = {"address": "10.0.0.2", "key": "k", "known_hosts": "kh"}
    data["hosts"] = {"mode": "ssh", "ssh": [{"name": "a", "nodes": ["s1"], **host},
                                            {"name": "b", "nodes": ["s2"], **host}]}
    with pytest.raises(ConfigError) as info:
        parse_plan(data, source="plan")
    assert info.value.field == "store.kind"
    assert "SQLite" in info.value.problem
    assert "redis-sentinel" in info.value.fix
    data["store"] = {"kind": "redis-sentinel"}
    parse_plan(data, source="plan")  # the fix works


@pytest.mark.timeout(90)
def test_ctrl_c_stops_every_remote_process(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    with private_sshd(tmp_path / "sshd") as sshd:
        plan = msgspec.structs.replace(_plan(sshd, remote, faults=False), phases=[
            msgspec.structs.replace(_plan(sshd, remote).phases[0], duration=60.0)])
        plan_path = tmp_path / "ssh.toml"
        plan_path.write_text(to_toml(_without_none(msgspec.to_builtins(plan))))
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from sipha.cli import main; sys.exit(main())",
             "run", str(plan_path), "--out", str(tmp_path / "out")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and proc.poll() is None:
                if (remote / "loadtest" / "sipha.jsonl").exists():  # the load runs remotely
                    break
                time.sleep(0.2)
            assert proc.poll() is None
            assert len(_processes_in(remote)) >= 4  # s1, s2, d1, controller, agent
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 130, out.decode(errors="replace")[-2000:]
        assert _processes_in(remote) == []
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["status"] == "interrupted"
    assert meta["leftover_pids"] == []
