"""Process helpers for tests, benchmarks and the test bed: ports, readiness, kill by PID."""

from __future__ import annotations

import collections
import contextlib
import glob
import os
import random
import shutil
import signal
import socket
import subprocess
import time

# Ports handed out for servers to bind later come from below the kernel's ephemeral range
# (32768-60999 by default): a port taken with bind(0) is an ephemeral one, which any outgoing
# connection may be given before the server binds it (a clean-clone run failed so: "address
# already in use" on a port free_port had just checked).
_PORTS = range(10_000, 20_000)
_pick = random.Random(int.from_bytes(os.urandom(8), "big"))
# Ports handed out lately: a caller asking twice before binding must get two ports.
_recent: collections.deque[int] = collections.deque(maxlen=512)


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_DGRAM) -> int:
    """A port free for both UDP and TCP on ``host`` right now, outside the ephemeral range.
    ``kind`` is kept for callers that name the transport they mean; both are checked."""
    del kind
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(500):
        port = _pick.choice(_PORTS)
        if port in _recent:
            continue
        try:
            for k in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(family, k) as s:
                    s.bind((host, port))
        except OSError:
            continue
        _recent.append(port)
        return port
    raise RuntimeError(f"no free port in {_PORTS.start}-{_PORTS.stop - 1} on {host}")


def wait_tcp(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until a TCP port accepts connections; raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{host}:{port} did not accept connections") from None
            time.sleep(0.05)


def wait_sip_options(host: str, port: int, timeout: float = 10.0, *,
                     local: str | None = None) -> None:
    """Wait until a SIP node answers OPTIONS over UDP (sent from ``local``, default a
    loopback address); raise TimeoutError."""
    deadline = time.monotonic() + timeout
    v6 = ":" in host
    with socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM) as s:
        local = local or (host if host.startswith("127.") or v6 else "127.0.0.1")
        s.bind((local, 0))
        s.settimeout(0.2)
        lport = s.getsockname()[1]
        target, via = (f"[{host}]", f"[{local}]") if v6 else (host, local)
        n = 0
        while time.monotonic() < deadline:
            n += 1
            msg = (
                f"OPTIONS sip:{target}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {via}:{lport};branch=z9hG4bKwait{n}\r\n"
                f"From: <sip:wait@{via}>;tag=w{n}\r\nTo: <sip:{target}:{port}>\r\n"
                f"Call-ID: wait-{n}-{lport}\r\nCSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
            with contextlib.suppress(OSError):
                s.sendto(msg, (host, port))
            try:
                data = s.recv(65535)
            except OSError:
                continue
            if data.startswith(b"SIP/2.0 "):
                return
    raise TimeoutError(f"{host}:{port} did not answer OPTIONS within {timeout} s")


def terminate(proc: subprocess.Popen[bytes] | subprocess.Popen[str], timeout: float = 5.0) -> int:
    """SIGTERM a child by PID, SIGKILL it after ``timeout``; return its exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
    return proc.returncode


_KAMAILIO_MODULE_DIRS = (
    "/usr/lib/*/kamailio/modules", "/usr/lib/kamailio/modules", "/usr/lib64/kamailio/modules",
    "/usr/local/lib/*/kamailio/modules", "/usr/local/lib/kamailio/modules",
    "/usr/local/lib64/kamailio/modules",
)


def kamailio_modules_dir() -> str | None:
    """Where this machine's Kamailio keeps its modules (the peer the tests and benchmarks run:
    Debian puts them under the multiarch triplet), or None when Kamailio is not installed."""
    for pattern in _KAMAILIO_MODULE_DIRS:
        for path in sorted(glob.glob(pattern)):
            if os.path.isfile(os.path.join(path, "tm.so")):
                return path
    if shutil.which("dpkg") is None:
        return None
    listing = subprocess.run(["dpkg", "-L", "kamailio"], capture_output=True, text=True,
                             timeout=30, check=False)
    for line in listing.stdout.splitlines():
        if line.endswith("/modules/tm.so"):
            return os.path.dirname(line)
    return None
