"""Hosts of a run as Linux network namespaces on one bridge (``[hosts] mode = "netns"``).

Theory of operation
-------------------
Every host of a run (a dispatcher, a server, redis, the load controller, a tester) becomes a
network namespace ``sipha-r<runner pid>-<host>`` with one interface, ``eth0``, the end of a veth
pair whose other end is a port of the bridge ``br0``.  The bridge lives in a namespace of its
own (``...-br``), so the host's own network gains no interface, route or rule: every address
(``10.213.0.0/24``) exists only inside the run's namespaces, and two runs (each with its own
bridge) may use the same addresses without meeting.

The runner itself is the bridge's host: ``br0`` has ``10.213.0.254`` and the runner's main
thread enters the bridge namespace (``setns``) for the run, so its HTTP polls and SIP OPTIONS
reach every node as an operator's monitoring host would.  Threads started after that (asyncio's
executor) inherit the namespace; the thread leaves it at the end.

Nothing survives the run: :meth:`Hosts.destroy` kills every process still inside a namespace
and deletes the namespaces (which takes their veths and nftables rules with them).  Before it
creates anything the runner writes a state file (``/run/sipha-netns/<prefix>.json``: its PID,
its start time, the namespaces) and starts a *guard*, a small process in its own session that
waits for the runner to die and then does the same clean-up: a SIGKILLed runner leaves nothing
behind either.  ``sipha run --cleanup`` (:func:`cleanup_leftovers`) removes what a run whose
runner and guard were both killed left: every state file and every ``sipha-r<pid>-*`` namespace
whose runner is gone.

Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for setns) and iproute2; :func:`unavailable` says why
not, as a pure function of the facts it is given.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

__all__ = [
    "BRIDGE_ADDRESS",
    "NETNS_SUBNET",
    "STATE_DIR",
    "Hosts",
    "cleanup_leftovers",
    "cleanup_prefix",
    "run_prefix",
    "unavailable",
]

NETNS_SUBNET = "10.213.0"
BRIDGE_ADDRESS = f"{NETNS_SUBNET}.254"
STATE_DIR = Path("/run/sipha-netns")
_CLONE_NEWNET = 0x40000000
_PREFIX = re.compile(r"^(sipha-r(\d+))-[a-z0-9_-]+$")
_LOOPBACK_HINT = ("run it in loopback mode instead: drop --hosts netns (or set "
                  '[hosts] mode = "loopback"), or run as root')


def unavailable(*, euid: int, which: Callable[[str], str | None]) -> str | None:
    """Why netns mode cannot run with these facts (``os.geteuid()``, ``shutil.which``), or
    None.  The text says how to run the plan anyway."""
    if euid != 0:
        return ("netns mode needs root: it creates network namespaces, veths and a bridge "
                f"(CAP_NET_ADMIN); {_LOOPBACK_HINT}")
    for tool, package in (("ip", "iproute2"), ("tc", "iproute2")):
        if which(tool) is None:
            return (f"netns mode needs `{tool}` (Debian: apt-get install {package}); "
                    f"{_LOOPBACK_HINT}")
    return None


def run_prefix(pid: int | None = None) -> str:
    """The name every namespace of this run starts with."""
    return f"sipha-r{os.getpid() if pid is None else pid}"


def _ip(*argv: str, check: bool = True) -> str:
    proc = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=10,
                          check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _started_at(pid: int) -> float | None:
    """Start time of ``pid``, or None when no such process lives (a zombie is dead)."""
    try:
        p = psutil.Process(pid)
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
        return float(p.create_time())
    except psutil.Error:
        return None


@dataclass
class Hosts:
    """The namespaces of one run: ``hosts`` maps a host name (``d1``, ``s2``...) to its
    address.  Create with :meth:`create`, remove with :meth:`destroy` (idempotent)."""

    prefix: str
    hosts: dict[str, str]
    created: list[str] = field(default_factory=list)
    guard: subprocess.Popen[bytes] | None = None
    wires: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def wire_rules(self, host: str) -> Path:
        """The rules file of ``host``'s bump in the wire (:mod:`.wire`)."""
        return STATE_DIR / f"{self.prefix}-wire-{host}.json"

    @property
    def guard_pid(self) -> int:
        return self.guard.pid if self.guard is not None else 0

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    def ns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def ns_of_address(self, address: str) -> str:
        """The namespace holding ``address``; raises LookupError."""
        for host, addr in self.hosts.items():
            if addr == address:
                return self.ns(host)
        raise LookupError(f"no host has address {address}")

    def exec_argv(self, address: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run in the host owning ``address`` (``ip netns exec`` execs: the PID we
        get is the program's own)."""
        return ["ip", "netns", "exec", self.ns_of_address(address), *argv]

    @property
    def state_file(self) -> Path:
        return STATE_DIR / f"{self.prefix}.json"

    def _write_state(self) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        state = {"prefix": self.prefix, "pid": os.getpid(), "started": _started_at(os.getpid()),
                 "guard_pid": self.guard_pid, "namespaces": self.created}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_file)

    def create(self) -> None:
        """State file and guard first, then the bridge namespace and one namespace per host.
        Raises RuntimeError (after removing what it made) if iproute2 refuses."""
        self._write_state()
        self.guard = _start_guard(os.getpid(), self.prefix)
        self._write_state()
        try:
            for name in [self.bridge, *(self.ns(h) for h in self.hosts)]:
                _ip("netns", "add", name)
                self.created.append(name)
                self._write_state()
                _ip("-n", name, "link", "set", "lo", "up")
            _ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.bridge, "addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", "br0")
            _ip("-n", self.bridge, "link", "set", "br0", "up")
            for i, (host, address) in enumerate(self.hosts.items()):
                port = f"v{i}"  # veth names are per namespace, at most 15 characters
                _ip("-n", self.bridge, "link", "add", port, "type", "veth", "peer", "name",
                    "eth0", "netns", self.ns(host))
                _ip("-n", self.bridge, "link", "set", port, "master", "br0", "up")
                _ip("-n", self.ns(host), "addr", "add", f"{address}/24", "dev", "eth0")
                _ip("-n", self.ns(host), "link", "set", "eth0", "up")
        except BaseException:
            self.destroy()
            raise

    def add_wires(self, wired: Sequence[str]) -> None:
        """A bump in the wire (:mod:`.wire`, for a kernel without netem) for each host of
        ``wired``: its cable's bridge end leaves the bridge, a second veth joins it, and a
        process carries the frames between the two.  Raises RuntimeError."""
        for i, host in enumerate(self.hosts):
            if host in wired:
                _ip("-n", self.bridge, "link", "set", f"v{i}", "nomaster")
                _ip("-n", self.bridge, "link", "set", f"v{i}", "promisc", "on")
                _ip("-n", self.bridge, "link", "add", f"w{i}", "type", "veth", "peer",
                    "name", f"x{i}")
                _ip("-n", self.bridge, "link", "set", f"x{i}", "master", "br0", "up")
                _ip("-n", self.bridge, "link", "set", f"w{i}", "promisc", "on", "up")
        # A frame carried by a packet socket must be complete: no checksum left to the
        # hardware, no segment larger than the MTU.  Every sender on the bridge, then.
        devices = [(self.ns(h), "eth0") for h in self.hosts] + [(self.bridge, "br0")]
        for ns, dev in devices:
            proc = subprocess.run(["ip", "netns", "exec", ns, "ethtool", "-K", dev, "tx", "off",
                                   "tso", "off", "gso", "off"], capture_output=True, text=True,
                                  timeout=10, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"ethtool -K {dev} in {ns}: {proc.stderr.strip()}")
        for i, host in enumerate(self.hosts):
            if host not in wired:
                continue
            self.wire_rules(host).write_text("{}")
            self.wires[host] = subprocess.Popen(
                ["ip", "netns", "exec", self.bridge, sys.executable, "-m", "sipha.testbed.wire",
                 f"v{i}", f"w{i}", str(self.wire_rules(host))],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for host, wire in self.wires.items():
            assert wire.stdout is not None
            if wire.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"the bump in the wire of {host} did not start")

    def add_address(self, host: str, address: str) -> None:
        """A second address on ``host``'s eth0 (a lone dispatcher's service address)."""
        _ip("-n", self.ns(host), "addr", "add", f"{address}/32", "dev", "eth0")

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """The calling thread (and threads it starts) in the bridge namespace."""
        own = os.open("/proc/self/ns/net", os.O_RDONLY)
        try:
            target = os.open(f"/run/netns/{self.bridge}", os.O_RDONLY)
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield
            finally:
                _setns(own)
        finally:
            os.close(own)

    def write_fence_script(self, path: Path, *, vip: str, log: Path) -> str:
        """The pair's fence command (STONITH through the runner's hands): the dispatcher
        calls it with the peer's node name and PID; it records the request in ``log`` (the
        runner reads it, so the fenced node's death is no crash), SIGKILLs the PID (one PID
        namespace for the whole run) and takes the address off the peer's ``eth0``, all out
        of band: it works while the network between the two is cut.  Returns the command."""
        path.write_text(
            "#!/bin/sh\n"
            "# sipha run (netns mode): fence NODE PID, out of band.\n"
            'case "$1" in *[!a-z0-9_-]*|"") exit 2;; esac\n'
            'case "$2" in *[!0-9]*|"") exit 2;; esac\n'
            f'echo "$(date +%s.%N) $1 $2" >> {log}\n'
            "# Only a process inside the peer's namespace: a stale PID must not kill a stranger.\n"
            f'[ "$(ip netns identify "$2" 2>/dev/null)" = "{self.prefix}-$1" ] && '
            'kill -9 "$2" 2>/dev/null\n'
            f'ip -n {self.prefix}-"$1" addr del {vip}/32 dev eth0 2>/dev/null\n'
            "exit 0\n")
        path.chmod(0o755)
        return f"{path} {{node}} {{pid}}"

    def destroy(self) -> list[str]:
        """Kill what runs inside, delete every namespace, the state file; returns what is
        left (empty on success)."""
        left = cleanup_prefix(self.prefix, self.created)
        self.created = []
        for proc in self.wires.values():  # killed inside the bridge namespace: reap them
            proc.kill()
            proc.wait(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()
        self.wires.clear()
        if self.guard is not None:  # nothing left to guard
            self.guard.kill()
            self.guard.wait(timeout=5)
            self.guard = None
        return left


def _start_guard(pid: int, prefix: str) -> subprocess.Popen[bytes]:
    """A process, in a session of its own, that cleans up after ``pid`` once it dies."""
    return subprocess.Popen(
        [sys.executable, "-m", "sipha.testbed.netns", "guard", str(pid), prefix],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _namespaces() -> list[str]:
    out = _ip("netns", "list", check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def cleanup_prefix(prefix: str, names: Sequence[str] = ()) -> list[str]:
    """Remove the namespaces ``names`` and any other ``<prefix>-*``: SIGKILL the processes
    inside (SIGCONT first, for a stopped one), delete them, then the state file.  Returns the
    namespaces that could not be deleted."""
    todo = list(dict.fromkeys([*names, *(n for n in _namespaces()
                                         if n.startswith(prefix + "-"))]))
    for _ in range(3):  # a process may fork while we kill: look again
        pids = [int(t) for ns in todo for t in _ip("netns", "pids", ns, check=False).split()
                if t.isdigit()]
        if not pids:
            break
        for pid in pids:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        time.sleep(0.05)
    for ns in reversed(todo):
        _ip("netns", "del", ns, check=False)
    left = [n for n in _namespaces() if n in todo]
    for rules in STATE_DIR.glob(f"{prefix}-wire-*.json") if STATE_DIR.is_dir() else ():
        rules.unlink(missing_ok=True)
    if not left:
        (STATE_DIR / f"{prefix}.json").unlink(missing_ok=True)
    return left


def _runner_alive(pid: int, started: float | None) -> bool:
    now = _started_at(pid)
    return now is not None and (started is None or abs(now - started) < 1.0)


def cleanup_leftovers() -> list[str]:
    """Remove what runs whose runner is gone left behind; returns the prefixes cleaned.
    A live run (its runner still running) is left alone."""
    cleaned: list[str] = []
    states: dict[str, Mapping[str, object]] = {}
    if STATE_DIR.is_dir():
        for path in STATE_DIR.glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(path.read_text())
                if isinstance(data, dict) and isinstance(data.get("prefix"), str):
                    states[data["prefix"]] = data
    prefixes = dict.fromkeys(states)
    for ns in _namespaces():
        m = _PREFIX.match(ns)
        if m:
            prefixes.setdefault(m.group(1), None)
    for prefix in prefixes:
        state = states.get(prefix, {})
        pid_text = prefix.removeprefix("sipha-r")
        recorded = state.get("pid")
        pid = recorded if isinstance(recorded, int) else int(pid_text) if pid_text.isdigit() else 0
        started = state.get("started")
        if pid and _runner_alive(pid, started if isinstance(started, float) else None):
            continue
        names = state.get("namespaces")
        cleanup_prefix(prefix, [str(n) for n in names] if isinstance(names, list) else [])
        cleaned.append(prefix)
    return cleaned


def _guard(pid: int, prefix: str) -> int:
    """Wait for ``pid`` to exit, then clean up after it (a no-op after a normal exit)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        fd = -1
    if fd >= 0:
        import select

        select.select([fd], [], [])
        os.close(fd)
    state = STATE_DIR / f"{prefix}.json"
    names: list[str] = []
    with contextlib.suppress(OSError, ValueError):
        names = [str(n) for n in json.loads(state.read_text()).get("namespaces", [])]
    cleanup_prefix(prefix, names)
    return 0


if __name__ == "__main__":  # the guard: python -m sipha.testbed.netns guard PID PREFIX
    if len(sys.argv) == 4 and sys.argv[1] == "guard" and sys.argv[2].isdigit():
        sys.exit(_guard(int(sys.argv[2]), sys.argv[3]))
    sys.exit(2)
