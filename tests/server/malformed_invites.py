"""A malformed-INVITE suite in the style of PROTOS c07-sip, generated from the grammar.

PROTOS c07-sip (University of Oulu, 2002) sends 4,527 INVITEs, each with one field replaced by
an anomaly (an overflow, a format string, a bad integer, an illegal character, a missing or a
repeated element), and follows each one with a CANCEL so that a target which accepted the
INVITE ends the call. This module builds the same kind of suite, deterministically: the base
INVITE is a list of fields, every field is cut into the parts the grammar gives it (RFC 3261
§25: scheme, user, host, port, parameters, tags, numbers, tokens), and each part is replaced in
turn by each anomaly. Header-level anomalies (missing, duplicated, empty, folded, a huge value,
NUL and bad bytes in the name) and message-level ones (bad line ends, truncation, a wrong
Content-Length) complete it.

Every case has its own Call-ID and branch (unless the case mutates exactly those), so the
target sees thousands of distinct transactions; the CANCEL is well formed and carries the
case's Call-ID, branch and CSeq number, as PROTOS's does.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["Case", "generate", "send_pass"]

# Anomalies for one part of a field. Overflows stop below one 64 KB datagram; lengths grow
# by powers of two from where a fixed buffer would usually sit, as PROTOS's do.
_OVERFLOW_SIZES = (128, 256, 1024, 2048, 8192, 16384, 40000)
_OVERFLOW_FILLS = ("a", "%", "@", "9", "\xff")
_FORMAT_STRINGS = ("%s%s%s%s%s%s%s%s", "%n%n%n%n", "%.1024d", "%99999999999s", "%x" * 64)
_INTEGERS = (
    "-1", "0", "-2147483649", "2147483648", "4294967296", "18446744073709551616",
    "9" * 200, "1e9", "0x10", "1.5", "+5", " 7", "",
)
_CHARACTERS = (
    "\x00", "a\x00b", "\r", "\n", "\t", " ", "\x7f", "\x01\x02\x03", "\xc3\x28", "\xe2\x82",
    "\xff\xfe", "\"", "<", ">", "\\", ";", ",", ":", "=", "@", "?", "&", "'", "[", "]",
    "%00", "%", "%zz", "\xef\xbb\xbf",
)


@dataclass(frozen=True, slots=True)
class Case:
    """One test case: the INVITE and the CANCEL that follows it."""

    number: int
    name: str
    invite: bytes
    cancel: bytes


@dataclass(frozen=True, slots=True)
class _Target:
    host: str
    port: int
    user: str
    local_port: int


# The base INVITE, field by field. Each value is a template of parts: ``{name}`` marks a part
# that is mutated in turn; the rest is fixed text.
_PARTS: dict[str, str] = {
    "method": "INVITE",
    "scheme": "sip",
    "user": "{user}",
    "host": "{host}",
    "port": "{port}",
    "uri_param": "transport=udp",
    "version": "SIP/2.0",
    "via_protocol": "SIP/2.0/UDP",
    "via_host": "127.0.0.1",
    "via_port": "{local_port}",
    "branch": "z9hG4bK-c07-{n}",
    "via_param": "rport",
    "from_display": "\"PROTOS\"",
    "from_user": "c07",
    "from_host": "127.0.0.1",
    "from_tag": "tag{n}",
    "to_display": "Bob",
    "to_user": "{user}",
    "to_host": "{host}",
    "call_id": "c07-{n}@127.0.0.1",
    "cseq_number": "1",
    "cseq_method": "INVITE",
    "contact_user": "c07",
    "contact_host": "127.0.0.1",
    "contact_port": "{local_port}",
    "expires": "300",
    "max_forwards": "70",
    "content_type": "application/sdp",
    "content_length": "{length}",
    "sdp_version": "0",
    "sdp_origin": "c07 2890844526 2890844526 IN IP4 127.0.0.1",
    "sdp_connection": "IN IP4 127.0.0.1",
    "sdp_media": "audio 49170 RTP/AVP 0",
}

_HEADERS = (
    ("Via", "{via_protocol} {via_host}:{via_port};branch={branch};{via_param}"),
    ("From", "{from_display} <sip:{from_user}@{from_host}>;tag={from_tag}"),
    ("To", "{to_display} <sip:{to_user}@{to_host}>"),
    ("Call-ID", "{call_id}"),
    ("CSeq", "{cseq_number} {cseq_method}"),
    ("Contact", "<sip:{contact_user}@{contact_host}:{contact_port}>"),
    ("Expires", "{expires}"),
    ("Max-Forwards", "{max_forwards}"),
    ("Content-Type", "{content_type}"),
    ("Content-Length", "{content_length}"),
)
_START_LINE = "{method} {scheme}:{user}@{host}:{port};{uri_param} {version}"
_SDP = (
    "v={sdp_version}\r\no={sdp_origin}\r\ns=-\r\nc={sdp_connection}\r\nt=0 0\r\n"
    "m={sdp_media}\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _render(
    target: _Target,
    n: int,
    values: dict[str, str],
    headers: list[tuple[str, str]] | None = None,
    *,
    line_end: str = "\r\n",
    length_delta: int | None = 0,
) -> tuple[bytes, dict[str, str]]:
    """The INVITE bytes with ``values`` overriding the base parts, and the parts used."""
    parts = {
        k: v.format(
            user=target.user, host=target.host, port=target.port, local_port=target.local_port,
            n=n, length="{length}",
        )
        for k, v in _PARTS.items()
    }
    parts.update(values)
    body = _SDP.format(**parts).encode("latin-1")
    if "content_length" not in values:
        parts["content_length"] = str(len(body) + (length_delta or 0))
    lines = [_START_LINE.format(**parts)]
    for name, template in headers if headers is not None else _HEADERS:
        lines.append(f"{name}: {template.format(**parts)}")
    head = line_end.join(lines) + line_end + line_end
    return head.encode("latin-1") + body, parts


def _cancel(target: _Target, parts: dict[str, str], n: int) -> bytes:
    """A well-formed CANCEL for the case: its Call-ID, branch and CSeq number when those are
    still usable as text, the base's otherwise (RFC 3261 §9.1)."""
    base = {k: v.format(
        user=target.user, host=target.host, port=target.port, local_port=target.local_port,
        n=n, length="0") for k, v in _PARTS.items()}

    def pick(key: str) -> str:
        value = parts.get(key, base[key])
        ok = value and len(value) < 200 and all(33 <= ord(c) < 127 for c in value)
        return value if ok else base[key]

    number = pick("cseq_number")
    if not number.isdigit() or len(number) > 9:
        number = base["cseq_number"]
    ruri = f"sip:{target.user}@{target.host}:{target.port};transport=udp"
    lines = [
        f"CANCEL {ruri} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{target.local_port};branch={pick('branch')};rport",
        f"From: \"PROTOS\" <sip:c07@127.0.0.1>;tag={pick('from_tag')}",
        f"To: Bob <sip:{target.user}@{target.host}>",
        f"Call-ID: {pick('call_id')}",
        f"CSeq: {number} CANCEL",
        "Max-Forwards: 70",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _part_anomalies() -> Iterator[tuple[str, str]]:
    for size in _OVERFLOW_SIZES:
        for fill in _OVERFLOW_FILLS:
            yield f"overflow-{fill.encode('latin-1').hex()}-{size}", fill * size
    for i, text in enumerate(_FORMAT_STRINGS):
        yield f"format-{i}", text
    for i, text in enumerate(_INTEGERS):
        yield f"integer-{i}", text
    for i, text in enumerate(_CHARACTERS):
        yield f"char-{i}", text
        yield f"char-prefix-{i}", "{base}" + text  # the good value with junk after it


def _header_anomalies() -> Iterator[tuple[str, Callable[[list[tuple[str, str]], int], None]]]:
    """Edits of the header list for the header at an index."""

    def missing(h: list[tuple[str, str]], i: int) -> None:
        del h[i]

    def duplicated(h: list[tuple[str, str]], i: int) -> None:
        h.insert(i, h[i])

    def hundredfold(h: list[tuple[str, str]], i: int) -> None:
        h[i + 1 : i + 1] = [h[i]] * 100

    def empty(h: list[tuple[str, str]], i: int) -> None:
        h[i] = (h[i][0], "")

    def folded(h: list[tuple[str, str]], i: int) -> None:
        h[i] = (h[i][0], "\r\n " + h[i][1])

    def space_before_colon(h: list[tuple[str, str]], i: int) -> None:
        h[i] = (h[i][0] + " ", h[i][1])

    def nul_in_name(h: list[tuple[str, str]], i: int) -> None:
        h[i] = (h[i][0][:2] + "\x00" + h[i][0][2:], h[i][1])

    def bad_name(h: list[tuple[str, str]], i: int) -> None:
        h[i] = (h[i][0] + "\xff", h[i][1])

    def huge_name(h: list[tuple[str, str]], i: int) -> None:
        h[i] = (h[i][0] * 900, h[i][1])

    def value_list(h: list[tuple[str, str]], i: int) -> None:
        h[i] = (h[i][0], ",".join([h[i][1]] * 50))

    yield from (
        ("missing", missing), ("duplicated", duplicated), ("hundredfold", hundredfold),
        ("empty", empty), ("folded", folded), ("space-before-colon", space_before_colon),
        ("nul-in-name", nul_in_name), ("bad-name", bad_name), ("huge-name", huge_name),
        ("value-list", value_list),
    )


def generate(host: str, port: int, *, user: str, local_port: int) -> list[Case]:
    """Every case, in a fixed order, for a target at ``host:port`` whose Request-URI user is
    ``user``; Via and Contact name ``local_port`` (where the sender listens)."""
    target = _Target(host, port, user, local_port)
    cases: list[Case] = []

    def add(name: str, invite: bytes, parts: dict[str, str]) -> None:
        n = len(cases)
        cases.append(Case(n, name, invite, _cancel(target, parts, n)))

    # 1. Every part of every field, replaced by every anomaly.
    anomalies = list(_part_anomalies())
    for part in _PARTS:
        for label, text in anomalies:
            n = len(cases)
            if "{base}" in text:
                base = _render(target, n, {})[1][part]
                text = text.replace("{base}", base)
            invite, parts = _render(target, n, {part: text})
            add(f"{part}/{label}", invite, parts)
    # 2. Every header missing, repeated, emptied, folded, renamed.
    for label, edit in _header_anomalies():
        for i, (name, _) in enumerate(_HEADERS):
            headers = list(_HEADERS)
            edit(headers, i)
            invite, parts = _render(target, len(cases), {}, headers)
            add(f"header-{name}/{label}", invite, parts)
    # 3. The message as a whole: line ends, Content-Length against the body, truncation.
    for label, line_end in (("lf", "\n"), ("cr", "\r"), ("lfcr", "\n\r"), ("nul", "\x00")):
        invite, parts = _render(target, len(cases), {}, line_end=line_end)
        add(f"message/line-end-{label}", invite, parts)
    for delta in (-200, -1, 1, 200, 70000):
        invite, parts = _render(target, len(cases), {}, length_delta=delta)
        add(f"message/content-length{delta:+d}", invite, parts)
    whole, parts = _render(target, len(cases), {})
    for cut in (1, 7, 8, 30, 60, 100, 200, len(whole) // 2, len(whole) - 1):
        add(f"message/truncated-{cut}", whole[:cut], parts)
        whole, parts = _render(target, len(cases), {})
    add("message/empty-line-first", b"\r\n" + _render(target, len(cases), {})[0], parts)
    add("message/body-only", _SDP.format(**parts).encode(), parts)
    add("message/all-nul", b"\x00" * 1024, parts)
    add("message/high-bytes", bytes(range(128, 256)) * 8, parts)
    return cases


def _options(host: str, port: int, local_port: int, n: int) -> bytes:
    return (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK-c07-probe-{n}\r\n"
        f"From: <sip:c07@127.0.0.1>;tag=probe{n}\r\n"
        f"To: <sip:{host}:{port}>\r\n"
        f"Call-ID: c07-probe-{n}@127.0.0.1\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def send_pass(
    sock: socket.socket, cases: list[Case], target: tuple[str, int], *, probe_every: int,
    probe_timeout: float = 5.0, tag: str = "",
) -> list[str]:
    """Send every case and its CANCEL to ``target`` over ``sock`` (a bound UDP socket), with an
    OPTIONS probe after every ``probe_every`` cases and at the end. Each probe must get its
    answer within ``probe_timeout``; returns the names of the cases after which one did not.
    Whatever else arrives (the 400s, 487s, ...) is read and thrown away."""
    host, port = target
    local_port = sock.getsockname()[1]
    unanswered: list[str] = []
    for start in range(0, len(cases), probe_every):
        batch = cases[start : start + probe_every]
        for case in batch:
            sock.sendto(case.invite, target)
            sock.sendto(case.cancel, target)
        probe = f"{tag}{start}"
        sock.sendto(_options(host, port, local_port, start), target)
        marker = f"z9hG4bK-c07-probe-{start}\r".encode()
        deadline = time.monotonic() + probe_timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                unanswered.append(f"{probe}:{batch[-1].name}")
                break
            sock.settimeout(left)
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            if data.startswith(b"SIP/2.0 200 ") and marker in data:
                break
    return unanswered
