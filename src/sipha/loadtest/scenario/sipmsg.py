"""A lenient reader of received SIP messages for the scenario interpreter.

The interpreter needs what SIPp's keywords and actions reach: the start line, every header
line by name (``[last_Via:]`` copies all Via lines), the Call-ID, CSeq and tags, the body.
This splits the message once; what it cannot read it leaves empty.  A message without a
Call-ID or a CSeq cannot belong to a call: :func:`read_message` returns None for it and the
engine counts it, never raises.  Compact header names (RFC 3261 §7.3.3) are expanded.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Received", "read_message"]

MAX_MESSAGE = 65_535
_COMPACT = {"i": "call-id", "v": "via", "f": "from", "t": "to", "m": "contact",
            "l": "content-length", "c": "content-type", "k": "supported", "s": "subject",
            "e": "content-encoding", "o": "event", "r": "refer-to", "u": "allow-events"}


@dataclass(slots=True)
class Received:
    text: str
    start_line: str
    method: str  # "" for a response
    status: int  # 0 for a request
    request_uri: str
    headers: list[tuple[str, str, str]]  # (lower-case full name, as written name, value)
    body: str
    call_id: str
    cseq_num: int
    cseq_method: str

    def values(self, name: str) -> list[str]:
        """Every value of header ``name`` (lower-case, full form), in order."""
        return [v for n, _, v in self.headers if n == name]

    def lines(self, name: str) -> list[str]:
        """Every header line of ``name`` as ``Name: value``, the name as SIPp writes it."""
        return [f"{shown}: {v}" for n, shown, v in self.headers if n == name]

    def header(self, name: str) -> str:
        """The values of ``name`` joined with ``", "`` (SIPp's get_header), "" if none."""
        return ", ".join(self.values(name))

    def tag(self, name: str) -> str:
        """The tag parameter of the From or To header."""
        value = self.header(name)
        lower = value.lower()
        i = lower.find(";tag=")
        if i < 0:
            return ""
        end = len(value)
        for sep in (";", ",", " ", ">"):
            j = value.find(sep, i + 5)
            if j >= 0:
                end = min(end, j)
        return value[i + 5:end]


def canonical(name: str) -> str:
    """The lower-case full form of a header name (compact forms expanded)."""
    low = name.strip().lower()
    return _COMPACT.get(low, low)


def read_message(data: bytes) -> Received | None:
    """The message in ``data``, or None if it is not a SIP message with Call-ID and CSeq."""
    if len(data) > MAX_MESSAGE:
        return None
    text = data.decode("utf-8", "replace")
    head, sep, body = text.partition("\r\n\r\n")
    if not sep:
        head, sep, body = text.partition("\n\n")
    lines = head.replace("\r\n", "\n").split("\n")
    start = lines[0].strip()
    words = start.split(" ", 2)
    method, status, uri = "", 0, ""
    if words[0].startswith("SIP/"):
        if len(words) < 2 or not words[1].isdigit() or len(words[1]) != 3:
            return None
        status = int(words[1])
    elif len(words) == 3 and words[2].startswith("SIP/"):
        method, uri = words[0], words[1]
    else:
        return None
    headers: list[tuple[str, str, str]] = []
    compact = _COMPACT
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # folded continuation (RFC 3261 §7.3.1)
            n, shown, v = headers[-1]
            headers[-1] = (n, shown, f"{v} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        shown = name.strip()
        low = shown.lower()  # canonical(), inlined: this loop runs for every header received
        headers.append((compact.get(low, low), shown, value.strip()))
    msg = Received(text, start, method, status, uri, headers, body, "", -1, "")
    msg.call_id = msg.header("call-id")
    cseq = msg.header("cseq").split()
    if not msg.call_id or len(cseq) != 2 or not cseq[0].isdigit():
        return None
    msg.cseq_num, msg.cseq_method = int(cseq[0]), cseq[1]
    return msg
