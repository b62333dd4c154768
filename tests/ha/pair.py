"""Two HA dispatchers (an active/standby pair) in front of sipha servers, as real processes
started on loopback and killed by PID; SIPp calls the service address."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sipha.common.process import free_port, wait_tcp
from tests.dispatcher.cluster import Node as ServerNode
from tests.dispatcher.cluster import spawn_server, wait_server

TOKEN = "t0ken"


@dataclass
class HaDispatcher:
    name: str
    args: list[str]
    http_port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self) -> None:
        log = self.log.with_suffix(f".{len(self.logs)}.log")
        self.logs.append(log)
        out = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sipha.cli", *self.args], stdout=out, stderr=subprocess.STDOUT
        )
        try:
            wait_tcp("127.0.0.1", self.http_port, timeout=15)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            raise AssertionError(log.read_text()[-3000:]) from None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            if sig == signal.SIGKILL:
                self.proc.wait(timeout=5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ha(self) -> dict[str, Any]:
        return self._call("GET", "/ha")

    def status(self) -> dict[str, Any]:
        return self._call("GET", "/status")

    def metrics(self) -> str:
        """The Prometheus text of /metrics (open to scrapers: no token)."""
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}", data=data,
                                     method=method, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())


@dataclass
class Pair:
    vip: str
    sip_port: int
    servers: list[ServerNode]
    a: HaDispatcher
    b: HaDispatcher

    @property
    def target(self) -> str:
        return f"{self.vip}:{self.sip_port}"

    def active(self) -> HaDispatcher | None:
        for d in (self.a, self.b):
            with contextlib.suppress(OSError):
                if d.alive() and d.ha()["role"] == "active":
                    return d
        return None

    def wait_roles(self, active: HaDispatcher, timeout: float = 10.0) -> None:
        other = self.b if active is self.a else self.a
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                ra, rb = active.ha(), other.ha()
                synced = rb["caught_up"] or not rb["replicate"]
                if ra["role"] == "active" and rb["role"] == "standby" and synced:
                    return
            time.sleep(0.05)
        raise AssertionError(f"roles did not settle: {active.log_text()[-2000:]}\n"
                             f"{other.log_text()[-2000:]}")


def dispatcher_args(
    name: str, *, vip: str, sip_port: int, http: int, listen: int, peer: int, priority: int,
    servers: list[str], failback: str, mode: str = "local", extra: tuple[str, ...] = (),
) -> list[str]:
    args = [
        "dispatcher", "--listen", f"udp:{vip}:{sip_port}", "--listen", f"tcp:{vip}:{sip_port}",
        "--http", f"127.0.0.1:{http}", "--token", TOKEN, "--algorithm", "wlc",
        "--ha-node-id", name, "--priority", str(priority), "--ha-mode", mode, "--vip", vip,
        "--ha-listen", f"127.0.0.1:{listen}", "--peer", f"127.0.0.1:{peer}",
        "--failback", failback, "--ha-key", "pair-key", "--log-level", "INFO", *extra,
    ]
    for s in servers:
        args += ["--server", s]
    return args


@contextlib.contextmanager
def pair(
    tmp: Path, *, failback: str = "sticky", n_servers: int = 4, extra: tuple[str, ...] = (),
    server_extra: tuple[str, ...] = (),
    vip: str | None = None,
) -> Iterator[Pair]:
    """Four sipha servers and two HA dispatchers in local mode on a fresh loopback VIP."""
    vip = vip or f"127.0.{random.randint(1, 250)}.{random.randint(10, 250)}"
    sip_port = free_port(vip)
    servers: list[ServerNode] = []
    ds: list[HaDispatcher] = []
    try:
        for i in range(n_servers):
            servers.append(spawn_server(tmp, i, server_extra))
        for node in servers:
            wait_server(node)
        uris = [s.uri for s in servers]
        l1, l2 = free_port(), free_port()
        h1, h2 = free_port(kind=1), free_port(kind=1)
        a = HaDispatcher("ds1", dispatcher_args(
            "ds1", vip=vip, sip_port=sip_port, http=h1, listen=l1, peer=l2, priority=200,
            servers=uris, failback=failback, extra=extra), h1, tmp / "ds1")
        b = HaDispatcher("ds2", dispatcher_args(
            "ds2", vip=vip, sip_port=sip_port, http=h2, listen=l2, peer=l1, priority=100,
            servers=uris, failback=failback, extra=extra), h2, tmp / "ds2")
        ds += [a, b]
        a.start()
        b.start()
        p = Pair(vip, sip_port, servers, a, b)
        p.wait_roles(a)
        yield p
    finally:
        for d in ds:
            d.signal(signal.SIGCONT)
            d.signal(signal.SIGKILL)
        for node in servers:
            node.kill()
