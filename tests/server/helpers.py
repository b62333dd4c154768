"""Server processes and raw SIP clients for the server tests (loopback, killed by PID)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sipha.common.process import free_port, terminate, wait_sip_options
from sipha.sip import Request, Response, parse_message
from sipha.sip.auth import build_credentials, parse_challenge

SCENARIOS = Path(__file__).parent / "scenarios"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    port: int
    http_port: int
    proc: subprocess.Popen[bytes]
    log: Path
    killed: bool = False

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def status(self) -> dict[str, object]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/status", timeout=5) as r:
            data: dict[str, object] = json.loads(r.read())
            return data

    def kill(self) -> None:
        """SIGKILL: a crash, no draining."""
        self.killed = True
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def server(
    workdir: Path,
    *,
    store: str | None = None,
    answer: Sequence[str] = ("service",),
    config: str | None = None,
    extra: Sequence[str] = (),
    name: str = "s",
) -> Iterator[Server]:
    """A ``python -m sipha server`` subprocess on free UDP+TCP ports; SIGTERM at the end
    (the exit status must be 0: graceful shutdown)."""
    port = free_port()
    http_port = free_port(kind=socket.SOCK_STREAM)
    cmd = [
        sys.executable, "-m", "sipha", "server",
        "--listen", f"udp:127.0.0.1:{port}", "--listen", f"tcp:127.0.0.1:{port}",
        "--http", f"127.0.0.1:{http_port}", "--server-id", name,
    ]
    if store is not None:
        cmd += ["--store", store]
    if config is not None:
        path = workdir / f"{name}.toml"
        path.write_text(config)
        cmd += ["--config", str(path)]
    for pattern in answer:
        cmd += ["--answer", pattern]
    cmd += list(extra)
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    srv = Server(port, http_port, proc, log)
    try:
        try:
            wait_sip_options("127.0.0.1", port, timeout=15)
        except TimeoutError:
            raise AssertionError(f"server did not start:\n{log.read_text()}") from None
        yield srv
    finally:
        started = time.monotonic()
        code = terminate(proc, timeout=15)
        # SIGTERM must end in a clean exit within the drain time (5 s) plus start-up slack.
        if not srv.killed and (code != 0 or time.monotonic() - started > 8):
            raise AssertionError(f"server exited {code}:\n{log.read_text()[-3000:]}")


def add_user(store: str, username: str, password: str, domain: str = "sipha.local") -> None:
    subprocess.run(
        [sys.executable, "-m", "sipha", "users", "--store", store, "add", username, password,
         "--domain", domain],
        check=True, capture_output=True, timeout=30,
    )


class SipClient:
    """A raw UDP SIP peer on loopback for hand-made requests and checks of each answer."""

    def __init__(self, server_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(5.0)
        self.port: int = self.sock.getsockname()[1]
        self.server = ("127.0.0.1", server_port)
        self.n = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SipClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes | str, to: tuple[str, int] | None = None) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.sock.sendto(raw, to or self.server)

    def recv(self, timeout: float = 5.0) -> Request | Response:
        self.sock.settimeout(timeout)
        data, _ = self.sock.recvfrom(65535)
        return parse_message(data)

    def recv_final(self, timeout: float = 5.0) -> Response:
        """Skip provisionals; the first final response."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.05, deadline - time.monotonic()))
            if isinstance(msg, Response) and msg.status >= 200:
                return msg

    def request(
        self,
        method: str,
        ruri: str,
        *,
        call_id: str | None = None,
        cseq: int = 1,
        from_user: str = "alice",
        to: str | None = None,
        headers: Sequence[str] = (),
        body: str = "",
        branch: str | None = None,
    ) -> str:
        self.n += 1
        call_id = call_id or f"c{self.n}-{self.port}-{time.monotonic_ns()}"
        branch = branch or f"z9hG4bKcl{self.port}x{self.n}x{time.monotonic_ns()}"
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch={branch}",
            f"From: <sip:{from_user}@127.0.0.1:{self.port}>;tag=ft{self.n}",
            f"To: {to or '<' + ruri + '>'}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            "Max-Forwards: 70",
            *headers,
        ]
        if not any(h.lower().startswith("contact:") for h in headers):
            lines.append(f"Contact: <sip:{from_user}@127.0.0.1:{self.port}>")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        self.send("\r\n".join(lines) + "\r\n\r\n" + body)
        return call_id

    def register(
        self, user: str, password: str, *, contact: str | None = None, expires: int = 300,
        call_id: str | None = None, cseq: int = 1,
    ) -> Response:
        """REGISTER, answer the 401, return the final response to the authenticated one."""
        ruri = f"sip:127.0.0.1:{self.server[1]}"
        to = f"<sip:{user}@127.0.0.1>"
        contact = contact or f"<sip:{user}@127.0.0.1:{self.port}>"
        headers = [f"Contact: {contact}", f"Expires: {expires}"]
        call_id = self.request("REGISTER", ruri, to=to, from_user=user, headers=headers,
                               call_id=call_id, cseq=cseq)
        first = self.recv_final()
        if first.status != 401:
            return first
        challenge = parse_challenge(first.get("www-authenticate") or "")
        creds = build_credentials(challenge, method="REGISTER", uri=ruri, username=user,
                                  password=password, cnonce=f"cn{self.n}")
        self.request("REGISTER", ruri, to=to, from_user=user, call_id=call_id, cseq=cseq + 1,
                     headers=[*headers, f"Authorization: {creds}"])
        return self.recv_final()
