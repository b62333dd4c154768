"""The attacker's view for the security tests: a recorder standing for an outside host (it must
receive nothing it should not), raw request building, and digest answers by hand."""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

from sipha.sip import Request, Response, parse_message
from sipha.sip.auth import build_credentials, parse_challenge


class Recorder:
    """A UDP endpoint on loopback that records every datagram it gets (an outside host, a
    premium-rate gateway, a victim of reflection)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.got: list[bytes] = []

    def drain(self, quiet: float = 0.5, limit: float = 5.0) -> list[bytes]:
        """Everything received until ``quiet`` seconds pass without a datagram."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self.sock.settimeout(quiet)
            try:
                data, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            self.got.append(data)
        return self.got

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def raw_request(
    method: str,
    ruri: str,
    *,
    via_port: int,
    call_id: str,
    from_uri: str,
    to: str,
    cseq: int = 1,
    headers: Sequence[str] = (),
    branch: str | None = None,
    body: str = "",
) -> str:
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{via_port};branch={branch or 'z9hG4bK' + call_id + str(cseq)}",
        f"From: <{from_uri}>;tag=atk",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        "Max-Forwards: 70",
        *headers,
        f"Content-Length: {len(body.encode())}",
    ]
    return "\r\n".join(lines) + "\r\n\r\n" + body


def final(sock: socket.socket, timeout: float = 5.0) -> Response:
    """The first final response on ``sock``."""
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        data, _ = sock.recvfrom(65535)
        msg = parse_message(data)
        if isinstance(msg, Response) and msg.status >= 200:
            return msg


def answer(challenge_response: Response, *, method: str, uri: str, user: str, password: str,
           nc: int = 1, cnonce: str = "cn1", header: str = "proxy-authenticate") -> str:
    """The Authorization / Proxy-Authorization value answering a 401/407."""
    challenge = parse_challenge(challenge_response.get(header) or "")
    creds = build_credentials(challenge, method=method, uri=uri, username=user,
                              password=password, cnonce=cnonce, nc=nc)
    return str(creds)


def requests_in(datagrams: list[bytes]) -> list[Request]:
    out = []
    for d in datagrams:
        msg = parse_message(d)
        if isinstance(msg, Request):
            out.append(msg)
    return out
