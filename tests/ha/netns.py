"""A small network of the test's own hosts: Linux network namespaces on one bridge.

Every namespace is named after the test's PID (``sipha-t<pid>-<node>``) so parallel runs and
leftovers never collide with anything else; the bridge lives in a namespace of its own, so
nothing is added to the host's network. Each node gets ``eth0`` (a veth whose other end is a
bridge port) with an address in 10.213.0.0/24, which exists only inside these namespaces.

Processes are started with ``ip netns exec NS ...`` (which execs, so the PID we hold is the
program's own) and killed by PID; `topology` kills them all and deletes every namespace in a
``finally`` block. Needs root (CAP_NET_ADMIN) and iproute2.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUBNET = "10.213.0"
HOSTS = {"d1": 1, "d2": 2, "s": 3, "c": 4}

# Prints the gratuitous ARPs for one address seen on a device: sender = target = the address
# (RFC 5227 §3). Runs inside the client's namespace as its own process.
ARP_WATCH = r"""
import socket, struct, sys, time
dev, vip = sys.argv[1], socket.inet_aton(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((dev, 0))
print("ready", flush=True)
while True:
    f = s.recv(128)
    if len(f) < 42:
        continue
    op, sha, spa, tpa = struct.unpack("!6xH6s4s6x4s", f[14:42])
    if spa == vip and tpa == vip:
        print(f"{time.time():.6f} {op} {sha.hex(':')}", flush=True)
"""


def available() -> str | None:
    """Why the namespace tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "needs iproute2"
    if shutil.which("sipp") is None:
        return "needs sipp"
    return None


def ip(*argv: str, check: bool = True) -> str:
    proc = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=10)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


@dataclass
class Topology:
    prefix: str
    nodes: list[str]
    tmp: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def ns(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    @staticmethod
    def addr(node: str) -> str:
        return f"{SUBNET}.{HOSTS[node]}"

    def mac(self, node: str) -> str:
        out = ip("-n", self.ns(node), "-j", "link", "show", "dev", "eth0")
        return str(json.loads(out)[0]["address"])

    def spawn(self, node: str, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        """Start ``argv`` in ``node``'s namespace, output to ``log``; killed on exit."""
        with log.open("ab") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", self.ns(node), *argv],
                                    stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def run(self, node: str, *argv: str, timeout: float = 10.0) -> str:
        proc = subprocess.run(["ip", "netns", "exec", self.ns(node), *argv],
                              capture_output=True, text=True, timeout=timeout)
        return proc.stdout

    def addresses(self, node: str) -> list[str]:
        """IPv4 addresses on ``node``'s eth0."""
        out = json.loads(ip("-n", self.ns(node), "-j", "-4", "addr", "show", "dev", "eth0"))
        return [str(a["local"]) for a in out[0].get("addr_info", [])]

    def neighbour(self, node: str, address: str) -> str | None:
        """The MAC ``node`` has for ``address`` (its ARP cache), or None."""
        out = json.loads(ip("-n", self.ns(node), "-j", "neigh", "show", address) or "[]")
        for entry in out:
            if entry.get("lladdr"):
                return str(entry["lladdr"])
        return None

    def http(self, node: str, port: int, path: str, token: str, method: str = "GET") -> Any:
        """JSON from an HTTP API on ``node``'s loopback (curl run inside its namespace)."""
        out = self.run(node, "curl", "-fsS", "-m", "2", "-X", method, "-H",
                       f"Authorization: Bearer {token}", f"http://127.0.0.1:{port}{path}")
        return json.loads(out) if out else None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
            os.kill(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _kill_namespace_pids(ns: str) -> None:
    """Processes still inside one of our namespaces (children of ours, e.g. keepalived's)."""
    for text in ip("netns", "pids", ns, check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(text), signal.SIGKILL)


@contextlib.contextmanager
def topology(tmp: Path, nodes: Sequence[str] = ("d1", "d2", "s", "c")) -> Iterator[Topology]:
    """Namespaces for ``nodes`` plus a bridge namespace; all removed afterwards."""
    topo = Topology(f"sipha-t{os.getpid()}", list(nodes), tmp)
    bridge = topo.ns("br")
    created: list[str] = []
    try:
        for name in [bridge, *(topo.ns(n) for n in nodes)]:
            ip("netns", "add", name)
            created.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        ip("-n", bridge, "link", "add", "br0", "type", "bridge")
        ip("-n", bridge, "link", "set", "br0", "up")
        for node in nodes:
            port = f"v-{node}"
            ip("-n", bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0",
               "netns", topo.ns(node))
            ip("-n", bridge, "link", "set", port, "master", "br0", "up")
            ip("-n", topo.ns(node), "addr", "add", f"{topo.addr(node)}/24", "dev", "eth0")
            ip("-n", topo.ns(node), "link", "set", "eth0", "up")
        yield topo
    finally:
        for proc in reversed(topo.procs):
            _kill(proc)
        for name in created:
            _kill_namespace_pids(name)
        for name in reversed(created):
            ip("netns", "del", name, check=False)


def wait_for(what: str, check: Any, timeout: float, *, logs: Sequence[Path] = ()) -> Any:
    """Poll ``check()`` until it returns something truthy; AssertionError with logs if not."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            value = check()
            if value:
                return value
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-2000:]}"
                              for p in logs if p.exists())
            raise AssertionError(f"timed out waiting for {what}\n{tails}")
        time.sleep(0.05)


# -- an HA pair of dispatchers (d1, d2) in front of sipha servers (s), SIPp in c ---------------

VIP = f"{SUBNET}.10"
SIP_PORT = 5060
HTTP_PORT = 8060
HA_PORT = 7001
TOKEN = "t0ken"
ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
SIPHA = str(ROOT / ".venv" / "bin" / "sipha")
NOTIFY = ROOT / "contrib" / "keepalived" / "sipha-notify.sh"
KEEPALIVED = "/usr/sbin/keepalived"


@dataclass
class NsPair:
    topo: Topology
    mode: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"{VIP}:{SIP_PORT}"

    def ha(self, node: str) -> Any:
        return self.topo.http(node, HTTP_PORT, "/ha", TOKEN)

    def all_logs(self) -> list[Path]:
        return list(self.logs.values())

    def holder(self) -> list[str]:
        """The dispatcher nodes whose eth0 has the service address."""
        return [n for n in ("d1", "d2") if VIP in self.topo.addresses(n)]

    def crash(self, node: str) -> None:
        """The node's dispatcher (and keepalived) dies at once, without a goodbye."""
        kprocs = [p for name, p in self.procs.items() if name == f"keepalived-{node}"]
        pids = [int(t) for p in kprocs for t in _children(p.pid)] + [p.pid for p in kprocs]
        # keepalived's VRRP child would send a priority-0 advert if it saw its parent go:
        # stop everything first so nothing of the node speaks again.
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        os.kill(self.procs[node].pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.procs[node].wait(timeout=5)


def _children(pid: int) -> list[str]:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return []


def _dispatcher_argv(node: str, peer: str, priority: int, mode: str, topo: Topology,
                     servers: list[str]) -> list[str]:
    # Fencing a node of this little network (STONITH-like): kill the peer's process, whose
    # PID its heartbeats carry (one PID namespace), and take the address off its interface.
    # With keepalived (external mode) the address is keepalived's business: kill only.
    fence = (f"sh -c 'kill -9 {{pid}} 2>/dev/null; ip -n {topo.ns(peer)} addr del {VIP}/32 "
             f"dev eth0 2>/dev/null; true'") if mode == "ip" else "sh -c 'kill -9 {pid}; true'"
    argv = [
        PYTHON, "-m", "sipha", "dispatcher", "--listen", f"udp:{VIP}:{SIP_PORT}",
        "--listen", f"tcp:{VIP}:{SIP_PORT}", "--http", f"127.0.0.1:{HTTP_PORT}",
        "--token", TOKEN, "--algorithm", "wlc", "--ha-node-id", node,
        "--priority", str(priority), "--ha-mode", mode, "--vip", VIP, "--interface", "eth0",
        "--ha-listen", f"{topo.addr(node)}:{HA_PORT}", "--peer", f"{topo.addr(peer)}:{HA_PORT}",
        "--ha-key", "pair-key", "--fence-command", fence, "--log-level", "INFO",
    ]
    for s in servers:
        argv += ["--server", s]
    return argv


def _keepalived_conf(topo: Topology, node: str, peer: str, priority: int, notify_by: str) -> Path:
    """contrib/keepalived/keepalived.conf for this network, unicast VRRP between d1 and d2.
    ``notify_by``: ``sipha`` (contrib's sipha-notify.sh calling ``sipha dispatcher ctl``) or
    ``curl`` (the same script making the HTTP call with curl, its default)."""
    tmp = topo.tmp
    notify = tmp / f"notify-{node}.sh"
    log = tmp / f"notify-{node}.log"
    # contrib's script, with curl or with `sipha dispatcher ctl` (a Python start-up) making the
    # call; its lock (one per node here) keeps keepalived's transitions in the order they
    # started (keepalived forks a notify per transition and does not wait).
    via = "curl" if notify_by == "curl" else "ctl"
    lock = tmp / f"notify-{node}.lock"
    notify.write_text(
        f"#!/bin/sh\nSIPHA_HTTP=127.0.0.1:{HTTP_PORT} SIPHA_TOKEN={TOKEN} SIPHA_BIN={SIPHA} "
        f"SIPHA_NOTIFY_VIA={via} SIPHA_NOTIFY_LOCK={lock} "
        f'exec sh {NOTIFY} "$1" >>{log} 2>&1\n'
    )
    notify.chmod(0o755)
    conf = tmp / f"keepalived-{node}.conf"
    conf.write_text(f"""
global_defs {{
    router_id sipha_{node}
    script_user root
}}
vrrp_instance SIPHA {{
    state BACKUP
    nopreempt
    interface eth0
    virtual_router_id 60
    priority {priority}
    advert_int 0.1
    version 3               # VRRPv3: advert_int below 1 s (centiseconds)
    unicast_src_ip {topo.addr(node)}
    unicast_peer {{
        {topo.addr(peer)}
    }}
    virtual_ipaddress {{
        {VIP}/32 dev eth0
    }}
    notify_master "{notify} master"
    notify_backup "{notify} backup"
    notify_fault "{notify} fault"
    notify_stop "{notify} stop"
}}
""")
    return conf


@contextlib.contextmanager
def ns_pair(
    topo: Topology, *, mode: str = "ip", n_servers: int = 2, notify_by: str = "sipha",
    dispatcher_args: Sequence[str] = (),
) -> Iterator[NsPair]:
    """sipha servers in ``s``, dispatchers d1 (priority 200) and d2 in ``mode`` (``ip``, or
    ``external`` with keepalived moving the address), settled: d1 active, d2 caught up.
    ``dispatcher_args`` go to both dispatchers (e.g. ``--crash-confirm 0``)."""
    tmp = topo.tmp
    p = NsPair(topo, mode)
    servers = []
    for i in range(n_servers):
        port = SIP_PORT + 1 + i
        log = p.logs[f"s{i}"] = tmp / f"server{i}.log"
        p.procs[f"s{i}"] = topo.spawn("s", [
            PYTHON, "-m", "sipha", "server", "--listen", f"udp:{topo.addr('s')}:{port}",
            "--answer", "service", "--store", f"sqlite:{tmp / 'cluster.db'}",
            "--server-id", f"s{i}", "--http", f"127.0.0.1:{8070 + i}",
        ], log)
        servers.append(f"sip:{topo.addr('s')}:{port}")
    ha_mode = "external" if mode == "external" else "ip"
    for node, peer, prio in (("d1", "d2", 200), ("d2", "d1", 100)):
        log = p.logs[node] = tmp / f"{node}.log"
        argv = [*_dispatcher_argv(node, peer, prio, ha_mode, topo, servers), *dispatcher_args]
        p.procs[node] = topo.spawn(node, argv, log)
        # d1 first, so it is the one that starts active (whoever hears no peer takes over).
        wait_for(f"{node} API", lambda n=node: p.ha(n), 20, logs=p.all_logs())
        if node == "d1" and ha_mode == "ip":
            wait_for("d1 active", lambda: p.ha("d1")["role"] == "active", 10,
                     logs=p.all_logs())
    if mode == "external":
        for node, peer, prio in (("d1", "d2", 200), ("d2", "d1", 100)):
            conf = _keepalived_conf(topo, node, peer, prio, notify_by)
            log = p.logs[f"keepalived-{node}"] = tmp / f"keepalived-{node}.log"
            p.procs[f"keepalived-{node}"] = topo.spawn(node, [
                KEEPALIVED, "-n", "-l", "-D", "-P", "-f", str(conf),
                "-p", str(tmp / f"k-{node}.pid"), "-r", str(tmp / f"kv-{node}.pid"),
            ], log)
            if node == "d1":  # d1 first: with nopreempt, whoever is master first stays
                wait_for("keepalived master on d1", lambda: p.holder() == ["d1"], 10,
                         logs=p.all_logs())
    wait_for("d1 active, d2 a caught-up standby", lambda: (
        p.ha("d1")["role"] == "active" and p.ha("d2")["role"] == "standby"
        and p.ha("d2")["caught_up"]), 20, logs=p.all_logs())
    wait_for("servers up", lambda: all(
        s["state"] == "active"
        for s in topo.http("d1", HTTP_PORT, "/servers", TOKEN)["servers"]), 20,
        logs=p.all_logs())
    yield p


def arp_watch(topo: Topology, node: str, address: str) -> Path:
    """Start recording gratuitous ARPs for ``address`` seen by ``node``; returns the log."""
    log = topo.tmp / f"arp-{node}.log"
    topo.spawn(node, [PYTHON, "-c", ARP_WATCH, "eth0", address], log)
    wait_for("ARP watcher", lambda: "ready" in log.read_text(), 10)
    return log


def garps(log: Path) -> list[tuple[float, int, str]]:
    """(time, ARP op, sender MAC) of every gratuitous ARP recorded."""
    out = []
    for line in log.read_text().splitlines()[1:]:
        t, op, mac = line.split()
        out.append((float(t), int(op), mac))
    return out


def run_sipp(topo: Topology, node: str, target: str, *, rate: int, calls: int, hold_ms: int,
             timeout: float) -> Any:
    """SIPp uac from ``node``'s namespace; a `tests.sipp.SippResult`."""
    from tests.sipp import FAST, SippResult, _last_row

    stat = topo.tmp / f"sipp-{time.monotonic_ns()}.csv"
    cmd = ["ip", "netns", "exec", topo.ns(node), "sipp", "-sn", "uac", target,
           "-i", topo.addr(node), "-p", "5060", "-t", "u1", "-r", str(rate), "-m", str(calls),
           "-d", str(hold_ms), "-nostdin", "-trace_stat", "-stf", str(stat), "-fd", "1", *FAST]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=topo.tmp)
    topo.procs.append(proc)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    stats = _last_row(stat) if stat.exists() else {}
    return SippResult(proc.returncode, stats, out.decode(errors="replace")[-4000:])
