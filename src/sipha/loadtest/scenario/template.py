"""Compiling the text of ``<send>`` messages and action attributes into templates.

Theory of operation
-------------------
SIPp substitutes ``[keyword]`` in a message when it sends it.  Compiling once, at load time,
turns each text into literal strings and :class:`~.model.Keyword` parts, so that a keyword
SIPp does not have (or sipha does not support) is an error naming its line before any call
is made, and sending costs one join.  Brackets nest: ``[authentication username=[field0]]``.

The message text is cleaned as SIPp cleans it (see :class:`~.model.MessageTemplate`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sipha.loadtest.scenario.model import Keyword, MessageTemplate, Template

__all__ = ["KEYWORDS", "compile_message", "compile_text"]

# Keywords with fixed names; [last_*], [$var], [fieldN] and [authentication] are matched apart.
KEYWORDS = frozenset({
    "service", "remote_ip", "remote_port", "local_ip", "local_ip_type", "local_port",
    "transport", "media_ip", "media_ip_type", "media_port", "auto_media_port", "call_id",
    "call_number", "cseq", "branch", "pid", "len", "peer_tag_param", "routes", "next_url",
    "clock_tick", "timestamp", "users", "userid", "sipp_version", "last_Request_URI",
    "last_cseq_number", "last_message", "server_ip", "ipv6", "remote_host",
})
_WITH_OFFSET = frozenset({"cseq", "branch", "call_number", "media_port", "auto_media_port",
                          "local_port", "remote_port", "last_cseq_number"})
_REJECTED = {
    "tdmmap": "[tdmmap] (TDM circuit maps) is not supported by sipha",
    "rtpstream_audio_port": "RTP streaming keywords are not supported by sipha",
    "rtpstream_video_port": "RTP streaming keywords are not supported by sipha",
}
_NAME_OFFSET = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*?)([+-]\d+)?$")
_FIELD = re.compile(r"^field(\d+)$")
_VAR = re.compile(r"^\$([A-Za-z0-9_.-]+)$")

Fail = Callable[[str, int], Exception]


def compile_text(text: str, *, line: int, fail: Fail) -> Template:
    """The template of ``text``, whose first character is on ``line``.

    ``fail(message, line)`` makes the exception raised for an unknown or malformed keyword.
    """
    parts: list[str | Keyword] = []
    i, n, lit_start = 0, len(text), 0
    while i < n:
        if text[i] != "[":
            i += 1
            continue
        end = _closing(text, i)
        if end < 0:
            # An unmatched "[" is plain text (an IPv6 literal split over keywords, say).
            i += 1
            continue
        if lit_start < i:
            parts.append(text[lit_start:i])
        kw_line = line + text.count("\n", 0, i)
        parts.append(_keyword(text[i + 1:end], kw_line, fail))
        i = lit_start = end + 1
    if lit_start < n:
        parts.append(text[lit_start:])
    return Template(tuple(parts))


def _closing(text: str, start: int) -> int:
    depth = 0
    for j in range(start, len(text)):
        c = text[j]
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return j
        elif c == "\n":
            return -1
    return -1


def _keyword(body: str, line: int, fail: Fail) -> Keyword:
    body = body.strip()
    head, _, rest = body.partition(" ")
    if head in _REJECTED:
        raise fail(_REJECTED[head], line)
    if head.startswith("last_") and head not in KEYWORDS:
        # [last_Via:], [last_Via], [last_Contact:value]: header lines of the last message.
        return Keyword(name=body if not rest else head, line=line)
    m = _VAR.match(head)
    if m:
        return Keyword(name=head, line=line)
    if _FIELD.match(head) or head == "authentication":
        params = tuple(_params(rest, line, fail)) if rest else ()
        allowed = {"file", "line"} if head != "authentication" else {
            "username", "password", "aka_K", "aka_OP", "aka_AMF"}
        for key, _ in params:
            if key not in allowed:
                raise fail(f"[{head}] has no parameter {key!r} (known: "
                           f"{', '.join(sorted(allowed))})", line)
            if key.startswith("aka_"):
                raise fail("AKA authentication is not supported by sipha", line)
        return Keyword(name=head, params=params, line=line)
    if rest:
        raise fail(f"keyword [{body}] takes no parameters", line)
    m = _NAME_OFFSET.match(head)
    if m is None or (m.group(1) not in KEYWORDS):
        raise fail(f"unknown keyword [{body}]", line)
    name, offset = m.group(1), int(m.group(2) or 0)
    if offset and name not in _WITH_OFFSET:
        raise fail(f"keyword [{name}] takes no offset", line)
    return Keyword(name=name, offset=offset, line=line)


def _params(text: str, line: int, fail: Fail) -> list[tuple[str, Template]]:
    out: list[tuple[str, Template]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] == " ":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise fail(f"malformed keyword parameter {text[i:]!r} (expected name=value)", line)
        key = text[i:eq].strip()
        j = eq + 1
        if j < n and text[j] in "\"'":
            q = text[j]
            k = text.find(q, j + 1)
            if k < 0:
                raise fail(f"unterminated quote in keyword parameter {key!r}", line)
            value, i = text[j + 1:k], k + 1
        else:
            k, depth = j, 0
            while k < n and (text[k] != " " or depth):
                depth += {"[": 1, "]": -1}.get(text[k], 0)
                k += 1
            value, i = text[j:k], k
        out.append((key, compile_text(value, line=line, fail=fail)))
    return out


def compile_message(text: str, *, line: int, fail: Fail) -> MessageTemplate:
    """The :class:`MessageTemplate` of a ``<send>``'s CDATA starting on ``line``."""
    raw = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    numbered = [(line + k, s.strip(" \t")) for k, s in enumerate(raw)]
    while numbered and not numbered[0][1]:
        numbered.pop(0)
    while numbered and not numbered[-1][1]:
        numbered.pop()
    if not numbered:
        raise fail("empty message", line)
    headers: list[tuple[int, str]] = []
    body: list[tuple[int, str]] = []
    target = headers
    for ln, s in numbered:
        if not s and target is headers:
            target = body
            continue
        target.append((ln, s))
    first_line, first = headers[0]
    start = compile_text(first, line=first_line, fail=fail)
    method, status = "", 0
    words = first.split()
    if words and words[0].startswith("SIP/"):
        if len(words) < 2 or not words[1].isdigit():
            raise fail(f"response start line {first!r} has no status code", first_line)
        status = int(words[1])
    elif words and not words[0].startswith("["):
        method = words[0]
    return MessageTemplate(
        start_line=start,
        headers=tuple(compile_text(s, line=ln, fail=fail) for ln, s in headers[1:]),
        body=tuple(compile_text(s, line=ln, fail=fail) for ln, s in body),
        method=method,
        status=status,
    )
