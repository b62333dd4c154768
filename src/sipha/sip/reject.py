"""Answering what could not be parsed: a 400 built from the salvaged headers (RFC 3261 §8.2.6)."""

from __future__ import annotations

from .errors import SipParseError
from .status import reason_phrase


def _clean(text: str) -> str:
    # A reason phrase may hold any text but CR and LF; keep it short and printable.
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:120]


def reject_malformed(err: SipParseError, *, server: str = "sipha") -> bytes | None:
    """The bytes of the response to a malformed request, or None when it cannot be answered.

    Responses and ACKs are never answered (RFC 3261 §17.2.1/§8.2.6). The reason phrase and a
    Warning header (RFC 3261 §20.43, code 399) carry the parser's reason.
    """
    p = err.partial
    if p is None or not p.answerable:
        return None
    status = err.status if err.status in (400, 413, 414, 483, 505, 513) else 400
    reason = _clean(err.reason)
    lines = [f"SIP/2.0 {status} {reason_phrase(status)} ({reason})"]
    lines.extend(f"Via: {v}" for v in p.vias)
    lines.append(f"From: {p.from_}")
    lines.append(f"To: {p.to}")
    lines.append(f"Call-ID: {p.call_id}")
    lines.append(f"CSeq: {p.cseq}")
    lines.append(f'Warning: 399 {server} "{reason.replace(chr(34), chr(39))}"')
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
