"""Real processes for the dispatcher's integration tests: sipha servers and a dispatcher,
started on loopback with free ports and killed by PID."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sipha.common.process import free_port, terminate, wait_sip_options, wait_tcp


@dataclass
class Node:
    proc: subprocess.Popen[bytes]
    sip_port: int
    http_port: int
    log: Path

    @property
    def uri(self) -> str:
        return f"sip:127.0.0.1:{self.sip_port}"

    def get(self, path: str, token: str | None = None) -> Any:
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{path}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def post(self, path: str, body: Any, token: str | None = None) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        """One HTTP API request; returns (status, decoded JSON or text) whatever the status."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                status, raw = resp.status, resp.read()
                kind = resp.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            status, raw, kind = exc.code, exc.read(), exc.headers.get_content_type()
        return status, json.loads(raw) if kind == "application/json" else raw.decode()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


@dataclass
class Cluster:
    servers: list[Node] = field(default_factory=list)
    dispatcher: Node | None = None
    token: str = "t0ken"

    @property
    def target(self) -> str:
        assert self.dispatcher is not None
        return f"127.0.0.1:{self.dispatcher.sip_port}"

    def api_servers(self) -> dict[str, dict[str, Any]]:
        assert self.dispatcher is not None
        return {s["id"]: s for s in self.dispatcher.get("/servers", self.token)["servers"]}


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "sipha.cli", *args], stdout=out, stderr=subprocess.STDOUT
    )


def spawn_server(tmp: Path, n: int, extra: Sequence[str] = ()) -> Node:
    sip, http = free_port(), free_port(kind=1)
    log = tmp / f"server{n}.log"
    answer = [] if "--config" in extra else ["--answer", "service"]
    proc = _spawn(
        [
            "server", "--listen", f"udp:127.0.0.1:{sip}", *answer,
            # One store shared by every server, as in the cluster: any server can end any call.
            "--http", f"127.0.0.1:{http}", "--store", f"sqlite:{tmp / 'cluster.db'}",
            "--server-id", f"s{n}", *extra,
        ],
        log,
    )
    return Node(proc, sip, http, log)


def wait_server(node: Node) -> None:
    try:
        wait_sip_options("127.0.0.1", node.sip_port, timeout=15)
        wait_tcp("127.0.0.1", node.http_port, timeout=15)
    except TimeoutError:
        node.kill()
        raise AssertionError(node.log.read_text()[-3000:]) from None


def start_dispatcher(
    tmp: Path,
    servers: list[str],
    *extra: str,
    token: str = "t0ken",
    transports: Sequence[str] = ("udp",),
    sip_port: int | None = None,
) -> Node:
    """A dispatcher listening on one free port (or ``sip_port``) in each of `transports`."""
    sip, http = sip_port or free_port(), free_port(kind=1)
    log = tmp / "dispatcher.log"
    args = ["dispatcher", "--http", f"127.0.0.1:{http}", "--token", token]
    for transport in transports:
        args += ["--listen", f"{transport}:127.0.0.1:{sip}"]
    args += extra
    for s in servers:
        args += ["--server", s]
    proc = _spawn(args, log)
    node = Node(proc, sip, http, log)
    try:
        wait_tcp("127.0.0.1", http, timeout=15)
    except TimeoutError:
        node.kill()
        raise AssertionError(log.read_text()[-3000:]) from None
    return node


@contextlib.contextmanager
def cluster(
    tmp: Path,
    weights: list[int],
    *extra: str,
    servers: int | None = None,
    transports: Sequence[str] = ("udp",),
) -> Iterator[Cluster]:
    """``len(weights)`` sipha servers behind one dispatcher (started with ``extra`` flags)."""
    c = Cluster()
    try:
        for i in range(servers or len(weights)):
            c.servers.append(spawn_server(tmp, i))
        for node in c.servers:
            wait_server(node)
        uris = [f"{s.uri};weight={w}" for s, w in zip(c.servers, weights, strict=True)]
        c.dispatcher = start_dispatcher(tmp, uris, *extra, token=c.token, transports=transports)
        yield c
    finally:
        if c.dispatcher is not None:
            terminate(c.dispatcher.proc, timeout=3)
        for node in c.servers:
            node.kill()  # test fixtures: no graceful drain needed
