"""`sipha run --hosts netns`: whole runs with every node on a host (namespace) of its own.

* case C shortened: the active dispatcher (ip mode: address moved with ip addr + gratuitous ARP,
  fenced out of band) is SIGKILLed; the takeover stays within its bound, no call fails;
* the split pair: d1 and d2 cut from each other only; d2 fences d1 through the runner's fence
  command before it takes the address, so the runner never sees two actives at once;
* a SIGKILLed runner leaves nothing behind: its guard removes the namespaces (and with them the
  veths and nftables rules) and kills the nodes; with the guard killed too, ``sipha run
  --cleanup`` does it;
* without root, a clear error and how to run in loopback mode, exit 2.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sipha.testbed.netns import STATE_DIR, unavailable

ROOT = Path(__file__).resolve().parents[2]
SIPHA = [sys.executable, "-c", "import sys; from sipha.cli import main; sys.exit(main())"]

CASE_C = """
name = "case-c-netns"
drain = 3
[hosts]
mode = "netns"
[servers]
count = 2
[[testers]]
name = "sipha1"
engine = "sipha"
[[testers]]
name = "sipp2"
engine = "sipp"
[[phases]]
duration = 10
rate = 20
hold = 1
recv_timeout = 5
[[faults]]
at = 4
action = "kill"
target = "active-dispatcher"
[expect.default]
max_failed_calls = 0
max_unfinished_calls = 0
# ip mode across hosts: the killed active's replication stream ends, 20 ms of heartbeat
# silence, fence + ip addr + gratuitous ARP: well inside the heartbeat token (300 ms)
max_takeover_ms = 300
"""

# The same with Debian's keepalived moving the address (VRRPv3 at the heartbeat interval):
# the backup waits out three adverts and its skew, then notifies its dispatcher.
CASE_C_KEEPALIVED = CASE_C.replace('name = "case-c-netns"', 'name = "case-c-keepalived"').replace(
    "[[testers]]", '[dispatchers]\nha = "keepalived"\n[[testers]]', 1).replace(
    "max_takeover_ms = 300", "max_takeover_ms = 1000")

SPLIT = """
name = "split-pair-netns"
drain = 3
[hosts]
mode = "netns"
[servers]
count = 2
[[testers]]
name = "t1"
[[phases]]
duration = 9
rate = 20
hold = 1
recv_timeout = 5
[[faults]]
at = 3
action = "split_pair"
duration = 3
[expect.default]
max_failed_calls = 0
max_takeover_ms = 1000
"""

LONG = """
name = "killed-runner"
[hosts]
mode = "netns"
[servers]
count = 1
[dispatchers]
count = 1
[[testers]]
name = "t1"
[[phases]]
duration = 120
rate = 5
hold = 1
[[faults]]
at = 1
action = "loss"
target = "s1"
percent = 1
[[faults]]
at = 1
action = "cpu_hog"
target = "t1"
duration = 60
"""


def _run(tmp: Path, plan: str, name: str) -> tuple[int, str, Path]:
    path = tmp / f"{name}.toml"
    path.write_text(plan)
    out = tmp / name
    proc = subprocess.run([*SIPHA, "run", str(path), "--out", str(out)], capture_output=True,
                          text=True, timeout=100, check=False)
    return proc.returncode, proc.stdout[-3000:] + proc.stderr[-3000:], out


def _events(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def _namespaces(prefix: str) -> list[str]:
    text = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10,
                          check=True).stdout
    return [line.split()[0] for line in text.splitlines() if line.startswith(prefix + "-")]


@pytest.mark.timeout(100)
def test_case_c_in_namespaces_ip_mode_takeover_bound_and_no_failed_call(tmp_path: Path) -> None:
    code, text, out = _run(tmp_path, CASE_C, "case-c")
    assert code == 0, text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calls_failed"] == 0, summary
    assert summary["calls_successful"] == summary["calls_attempted"] >= 0.9 * 2 * 20 * 10
    [takeover] = summary["takeover_ms"]
    assert 0 < takeover <= 1000
    assert 0 < takeover < 300  # fast detection: not the token
    ha = (out / "config" / "d2-ha.toml").read_text()
    assert 'mode = "ip"' in ha
    assert "fence.sh {node} {pid}" in ha
    kinds = {(e["kind"], e["node"]) for e in _events(out)}
    assert ("fault", "d1") in kinds
    assert "standby -> fencing (replication stream lost" in (out / "logs" / "d2.log").read_text()


@pytest.mark.timeout(100)
def test_case_c_in_namespaces_with_keepalived_moving_the_address(tmp_path: Path) -> None:
    code, text, out = _run(tmp_path, CASE_C_KEEPALIVED, "case-c-keepalived")
    assert code == 0, text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calls_failed"] == 0, summary
    assert summary["calls_successful"] == summary["calls_attempted"] >= 0.9 * 2 * 20 * 10
    [takeover] = summary["takeover_ms"]
    assert 0 < takeover <= 1000
    assert 'mode = "external"' in (out / "config" / "d2-ha.toml").read_text()
    conf = (out / "config" / "d2-keepalived.conf").read_text()
    assert "advert_int 0.1" in conf
    assert "nopreempt" in conf
    d2 = (out / "logs" / "d2.log").read_text()
    assert "Entering MASTER STATE" in d2, d2[-3000:]  # keepalived moved it, in d2's node
    assert "standby -> acquiring (operator promote)" in d2, d2[-3000:]  # its notify called


@pytest.mark.timeout(100)
def test_split_pair_never_two_actives(tmp_path: Path) -> None:
    code, text, out = _run(tmp_path, SPLIT, "split")
    assert code == 0, text
    events = _events(out)
    assert any(e["kind"] == "fault" and str(e["detail"]).startswith("split_pair")
               for e in events), events
    assert any(e["kind"] == "heal" for e in events), events
    # Whichever started active (d1 unless d2 won a slow start) is fenced by the other, through
    # the runner's fence script, before the other takes the address.
    [split_at] = [e["t"] for e in events if e["kind"] == "fault"]
    roles: dict[str, str] = {}
    active_at_split = None
    for line in (out / "roles.jsonl").read_text().splitlines():
        r = json.loads(line)
        if active_at_split is None and r["t"] >= split_at:
            active_at_split = next(n for n, role in roles.items() if role == "active")
        roles[r["node"]] = r["role"]
        assert list(roles.values()).count("active") <= 1, (r, roles)
    other = {"d1": "d2", "d2": "d1"}[str(active_at_split)]
    assert any(e["kind"] == "fenced" and e["node"] == active_at_split for e in events), events
    fenced = (out / "fenced.log").read_text().split()
    assert fenced[1:2] == [active_at_split], fenced
    assert roles[other] == "active"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["calls_failed"] == 0, summary


def _start_long_run(tmp: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "long.toml"
    path.write_text(LONG)
    proc = subprocess.Popen([*SIPHA, "run", str(path), "--out", str(tmp / "long")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    prefix = f"sipha-r{proc.pid}"
    events = tmp / "long" / "events.jsonl"
    deadline = time.monotonic() + 40
    # Up to the loss fault: namespaces, nodes and an nftables table exist.
    while time.monotonic() < deadline and not (
            events.exists() and '"kind":"fault"' in events.read_text()):
        assert proc.poll() is None, "the run ended early"
        time.sleep(0.1)
    assert _namespaces(prefix), "no namespace was created"
    return proc, prefix, tmp / "long"


def _leftovers(prefix: str, out: Path, since: float) -> list[str]:
    """Namespaces, the state file, the run's nodes, its CPU hog (stress-ng started since)."""
    left = _namespaces(prefix)
    if (STATE_DIR / f"{prefix}.json").exists():
        left.append("state file")
    for p in psutil.process_iter(["cmdline", "status", "name", "create_time"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(str(out) in a for a in p.info["cmdline"] or ()) or (
                    p.info["name"].startswith("stress-ng") and p.info["create_time"] >= since):
                left.append(f"process {p.pid} {p.info['name']}")
        except psutil.Error:
            continue
    return left


def _wait_clean(prefix: str, out: Path, since: float, seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    while (left := _leftovers(prefix, out, since)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.timeout(90)
def test_sigkilled_runner_leaves_no_namespace_process_or_rule(tmp_path: Path) -> None:
    since = time.time() - 1
    proc, prefix, out = _start_long_run(tmp_path / "a")
    try:
        assert any(p.name().startswith("stress-ng") for p in psutil.process_iter()), "no hog"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        # The guard notices through a pidfd and removes everything.
        assert _wait_clean(prefix, out, since, 15) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run([*SIPHA, "run", "--cleanup"], capture_output=True, timeout=30,
                       check=False)

    # Runner and guard both killed: `sipha run --cleanup` finds the leftovers by name.
    proc, prefix, out = _start_long_run(tmp_path / "b")
    try:
        state = json.loads((STATE_DIR / f"{prefix}.json").read_text())
        os.kill(state["guard_pid"], signal.SIGKILL)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        time.sleep(0.5)
        assert _namespaces(prefix), "the leftovers this test needs are missing"
        done = subprocess.run([*SIPHA, "run", "--cleanup"], capture_output=True, text=True,
                              timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        assert prefix in done.stdout
        assert _wait_clean(prefix, out, since, 5) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run([*SIPHA, "run", "--cleanup"], capture_output=True, timeout=30,
                       check=False)


def test_without_root_a_clear_error_and_the_loopback_way() -> None:
    why = unavailable(euid=1000, which=lambda tool: f"/usr/sbin/{tool}")
    assert why is not None
    assert "needs root" in why
    assert "loopback" in why
    assert unavailable(euid=0, which=lambda tool: None) is not None
    assert unavailable(euid=0, which=lambda tool: f"/usr/sbin/{tool}") is None
    # The real thing, as an unprivileged user.
    env = {**os.environ, "HOME": "/tmp", "MPLCONFIGDIR": "/tmp"}
    proc = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *SIPHA, "run",
         str(ROOT / "plans" / "smoke.toml"), "--hosts", "netns", "--out", "/nonexistent/x"],
        capture_output=True, text=True, timeout=60, check=False, env=env, cwd="/tmp")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "netns mode needs root" in proc.stderr
    assert "loopback" in proc.stderr
