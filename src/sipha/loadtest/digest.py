"""Answering a digest challenge (401/407) from a scanned response, via the SIP core's auth."""

from __future__ import annotations

import random

from sipha.loadtest.wire import Scan
from sipha.sip.auth import build_credentials
from sipha.sip.digest_header import parse_challenge
from sipha.sip.errors import SipParseError

__all__ = ["authorization_line"]


def authorization_line(
    msg: Scan, *, method: str, uri: str, username: str, password: str, rng: random.Random
) -> str | None:
    """The ``Authorization`` (401) or ``Proxy-Authorization`` (407) header line, CRLF-ended,
    answering the challenge in ``msg`` (RFC 3261 §22.2, §22.3); None if the challenge is
    missing or cannot be answered (unknown algorithm or qop), so the caller fails the call
    with the response's status."""
    if msg.status == 407:
        raw, name = msg.proxy_challenge, "Proxy-Authorization"
    else:
        raw, name = msg.challenge, "Authorization"
    if not raw:
        return None
    try:
        challenge = parse_challenge(raw.decode("utf-8", "replace"))
        creds = build_credentials(
            challenge,
            method=method,
            uri=uri,
            username=username,
            password=password,
            cnonce=f"{rng.getrandbits(48):012x}",
        )
    except SipParseError:
        return None
    return f"{name}: {creds}\r\n"
