"""Parsing SIP messages from datagrams and byte streams (RFC 3261 §7, §18.3).

Theory of operation
-------------------
``parse_message`` does the least work that lets a node decide what to do with a message and
answer 400 when it must not go further:

1. find the end of the header section (one ``bytes.find``), refuse oversized input;
2. decode the header section as UTF-8 in one C call, refuse a NUL (but the escaped one of a
   quoted-pair in a quoted string, RFC 4475 intmeth), split it into lines on CRLF and refuse
   a bare CR or LF;
3. read the start line, then per header line only the name (up to the colon), folding
   continuation lines into the line above;
4. check the headers every message needs (Via, From, To, Call-ID, CSeq), that CSeq names the
   request's method and that Content-Length fits the bytes that came.

Every step is a C-level call over the whole header section, not a Python loop over its lines,
because this runs for every datagram a node receives. Three of them have a fast path for the
way (nearly) every sender writes and fall back to the exact path for anything else:

* Header names (step 3). The lines are joined with NUL, a character step 2 has refused, so
  the joined string shows a bare CR or LF with two ``in`` searches and, lowercased, feeds one
  ``findall`` that returns every name written as a token right against its colon
  (``_fast_header_names``). Its answer is used only when it found exactly one name per header
  line and no limit (header count, line length) is near: a folded line, a line without a
  colon, white space before a colon or a name that is not a token all make the counts differ.
  Then ``_split_header_lines`` decides, exactly as before the fast path existed, with its own
  error messages.
* The request line (step 3). One match for the usual spelling, ``_request_line`` otherwise.
* CSeq (step 4). One match over the whole ``CSeq: 4711 INVITE`` line
  (:func:`~sipha.sip.headers._cseq_in_line`); any other spelling goes to ``parse_cseq``.

A fast path never decides an error: when it declines, the exact path gives the answer and the
error it always gave. ``tests/sip/test_parser_fast_paths.py`` feeds generated and mutated input
to both paths and requires the same result or the same SipParseError status.

Every other value stays text until a caller asks for it (see :mod:`sipha.sip.message`).
Nothing here backtracks: each step is a linear scan, and each regex is a possessive repeat of
a character class anchored on a delimiter it cannot contain, so parsing time is linear in the
input. Any failure is a :class:`SipParseError` carrying what was salvaged (Via, From, To,
Call-ID, CSeq) so that the caller can still answer 400.

``StreamParser`` frames messages on a TCP byte stream by Content-Length (§18.3) and bounds what
it buffers: a peer that sends a never-ending header gets an error, not our memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import PartialMessage, SipParseError
from .headers import COMPACT_FORMS, TOKEN_CHARS, _cseq_in_line, parse_cseq
from .message import Request, Response
from .uri import SipUri, parse_uri

_MANDATORY = ("via", "from", "to", "call-id", "cseq")
_MANDATORY_SET = frozenset(_MANDATORY)
_TOKEN_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)
_NAME_CHARS = _TOKEN_CHARS | {"\n"}
# One header line of the form (almost) every sender uses: a token name right against its
# colon, at the start of a line. It runs over the lowercased lines joined with NUL (a byte the
# header section cannot hold, see parse_message) and yields the lowercase names in order. A
# match starts only at a NUL and cannot cross one, and the possessive ``++`` gives nothing
# back, so the scan is linear.
_NAME_LINE = re.compile(r"\x00([a-z0-9\-.!%*_+`'~]++):")
_COMPACT_NAMES = frozenset(COMPACT_FORMS)
# A request line as senders write it: a token method, a Request-URI with an ASCII
# alphanumeric scheme and no space, "SIP/2.0" in upper case. Whatever it accepts,
# _request_line accepts with the same method and URI; anything else goes there.
_REQUEST_LINE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]++) ([A-Za-z0-9]++:[^ ]*+) SIP/2\.0")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that protect a node from hostile input."""

    max_message_size: int = 65_535
    max_headers: int = 256
    max_line_length: int = 8_192
    max_body_size: int = 65_535


DEFAULT_LIMITS = Limits()


def _partial(method: str | None, names: list[str], lines: list[str]) -> PartialMessage:
    def first(key: str) -> str | None:
        for i, n in enumerate(names):
            if n == key:
                line = lines[i]
                return line[line.index(":") + 1 :].strip()
        return None

    vias = tuple(
        lines[i][lines[i].index(":") + 1 :].strip() for i, n in enumerate(names) if n == "via"
    )
    return PartialMessage(
        method=method,
        vias=vias,
        from_=first("from"),
        to=first("to"),
        call_id=first("call-id"),
        cseq=first("cseq"),
    )


_MANDATORY_RAW = {
    b"via": "via", b"v": "via", b"from": "from", b"f": "from", b"to": "to", b"t": "to",
    b"call-id": "call-id", b"i": "call-id", b"cseq": "cseq",
}


def _salvage_raw(data: bytes, method: str | None) -> PartialMessage:
    """What a 400 needs, read from the raw bytes when the header section as a whole is
    unusable (a NUL, a byte that is not UTF-8, a bare CR or LF, a bad start line). Only clean
    lines are taken: a mandatory header that is itself damaged leaves the field empty, and the
    message is then not answered (we never reflect bytes we could not read)."""
    if method is None:
        return PartialMessage()
    end = data.find(b"\r\n\r\n")
    head = data[: end if end >= 0 else len(data)]
    found: dict[str, list[str]] = {}
    for raw in head.split(b"\n")[1:]:
        line = raw[:-1] if raw.endswith(b"\r") else raw
        colon = line.find(b":")
        if colon <= 0 or line[:1] in (b" ", b"\t"):
            continue
        key = _MANDATORY_RAW.get(line[:colon].strip().lower())
        if key is None:
            continue
        value = line[colon + 1 :]
        if b"\x00" in value or b"\r" in value:
            continue
        try:
            text = value.decode("utf-8").strip()
        except UnicodeDecodeError:
            continue
        found.setdefault(key, []).append(text)

    def first(key: str) -> str | None:
        values = found.get(key)
        return values[0] if values else None

    return PartialMessage(
        method=method, vias=tuple(found.get("via", ())), from_=first("from"), to=first("to"),
        call_id=first("call-id"), cseq=first("cseq"),
    )


def _nuls_all_quoted(head: str) -> bool:
    """Whether every NUL of ``head`` is the escaped character of a quoted-pair inside a
    quoted string (RFC 3261 §25.1). Linear; runs only for a header section holding a NUL."""
    for line in head.split("\r\n"):
        if "\x00" not in line:
            continue
        quoted = escaped = False
        for ch in line:
            if escaped:
                escaped = False
            elif ch == "\x00":
                return False
            elif quoted and ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = not quoted
    return True


def salvage(message: Request | Response) -> PartialMessage:
    """What a 400 needs from a parsed message whose lazily read header turned out malformed."""
    method = message.method if isinstance(message, Request) else None
    return _partial(method, message._names, message._lines)


def _is_token(s: str) -> bool:
    return bool(s) and not s.strip(TOKEN_CHARS)


def _fold(head_lines: list[str]) -> tuple[list[str], SipParseError | None]:
    # RFC 3261 §7.3.1 line folding: keep the break so an untouched line stays byte-exact.
    lines: list[str] = []
    for line in head_lines:
        if line[:1] in (" ", "\t"):
            if not lines:
                return lines, SipParseError("continuation line before any header")
            lines[-1] = f"{lines[-1]}\r\n{line}"
        else:
            lines.append(line)
    return lines, None


def _split_header_lines(
    lines: list[str], limits: Limits, folded: bool, total_length: int = 1 << 30
) -> tuple[list[str], list[str], SipParseError | None]:
    # Bulk operations (one C call over all lines) instead of per-line Python checks: this is
    # the hottest loop of every node.
    if folded:
        lines, err = _fold(lines)
        if err is not None:
            return [], [], err
    if not lines:
        return [], lines, None
    if len(lines) > limits.max_headers:
        lines = lines[: limits.max_headers]
        names, lines, err = _split_header_lines(lines, limits, False)
        return names, lines, err or SipParseError("too many headers")
    if total_length > limits.max_line_length and max(map(len, lines)) > limits.max_line_length:
        long_at = next(i for i, ln in enumerate(lines) if len(ln) > limits.max_line_length)
        names, lines, err = _split_header_lines(lines[:long_at], limits, False)
        return names, lines, err or SipParseError("header line too long")
    colons = [line.find(":") for line in lines]
    if min(colons) <= 0:
        bad = next(i for i, c in enumerate(colons) if c <= 0)
        names, kept, err = _split_header_lines(lines[:bad], limits, False)
        text = lines[bad][:40]
        return names, kept, err or SipParseError(f"header line without a name: {text!r}")
    joined = "\n".join([line[:c] for line, c in zip(lines, colons, strict=True)]).lower()
    if not _NAME_CHARS.issuperset(joined):
        # White space before the colon is legal (RFC 3261 §7.3.1); anything else is not a token.
        raw = joined.split("\n")
        names = [n.rstrip(" \t") for n in raw]
        for i, n in enumerate(names):
            if not _is_token(n):
                return names[:i], lines[:i], SipParseError(f"bad header name {n[:40]!r}")
    else:
        names = joined.split("\n")
    if min(map(len, names)) == 1:
        compact = COMPACT_FORMS
        names = [compact.get(n, n) if len(n) == 1 else n for n in names]
    return names, lines, None


def _fast_header_names(joined: str, lines: list[str], limits: Limits) -> list[str] | None:
    """The normalized header names, if every header line is ``token:...`` and no limit is
    near; None when ``_split_header_lines`` must decide. ``lines`` is the header section
    split on CRLF, start line first, and ``joined`` the same lines joined with NUL."""
    breaks = len(lines) - 1
    if not 0 < breaks <= limits.max_headers:
        return None
    if len(joined) > limits.max_line_length and max(map(len, lines)) > limits.max_line_length:
        return None
    names: list[str] = _NAME_LINE.findall(joined.lower())
    if len(names) != breaks:
        # Some line is folded, has no colon, or has a name that is not a token as written.
        return None
    if not _COMPACT_NAMES.isdisjoint(names):
        # Cheaper than looking for one-letter names, and it hashes the names once for the
        # mandatory-header check that follows.
        compact = COMPACT_FORMS
        names = [compact.get(n, n) if len(n) == 1 else n for n in names]
    return names


def _request_line(start: str, data: bytes, limits: Limits) -> tuple[str, str]:
    """Method and Request-URI of any request line; raises SipParseError for a bad one."""
    parts = start.split(" ")
    if len(parts) != 3:
        raise SipParseError("bad request line")
    method, ruri, version = parts
    if not _is_token(method):
        raise SipParseError(f"bad method {method[:20]!r}")
    if version != "SIP/2.0" and version.upper() != "SIP/2.0":
        # RFC 3261 §21.5.25: 505 Version Not Supported, answered from what we can read.
        raise SipParseError(f"unsupported version {version[:20]!r}", status=505,
                            partial=_salvage_raw(data, method))
    colon = ruri.find(":")
    if colon <= 0 or not ruri[:colon].isalnum() or len(ruri) > limits.max_line_length:
        # The scheme is all we insist on here; the rest of the URI is parsed on demand.
        raise SipParseError(f"bad Request-URI {ruri[:40]!r}", status=400,
                            partial=_salvage_raw(data, method))
    return method, ruri


def _has_uri_headers(ruri: str) -> bool:
    """Whether a sip:/sips: Request-URI carries ``?headers`` (a ``?`` in its user part is
    legal, RFC 4475 §3.1.1.2: so the URI is parsed, which happens only when a ``?`` is in it)."""
    if ruri[:4].lower() not in ("sip:", "sips"):
        return False
    try:
        uri = parse_uri(ruri)
    except SipParseError:
        return False  # refused when the URI is read, as any bad Request-URI
    return isinstance(uri, SipUri) and bool(uri.headers)


def _early(data: bytes, reason: str) -> SipParseError:
    """An error found before the header lines were split: salvage from the raw bytes, for a
    request whose start line reads as one."""
    start = data[: data.find(b"\r\n")].split(b" ")
    method: str | None = None
    if len(start) == 3 and start[2].upper() == b"SIP/2.0":
        token = start[0].decode("ascii", "replace")
        method = token if _is_token(token) else None
    return SipParseError(reason, partial=_salvage_raw(data, method))


def parse_message(
    data: bytes, *, limits: Limits = DEFAULT_LIMITS, stream: bool = False
) -> Request | Response:
    """Parse one SIP message.

    ``data`` is a whole datagram (bytes past Content-Length are discarded, RFC 3261 §18.3), or
    with ``stream=True`` exactly one framed message from :class:`StreamParser`.

    Raises:
        SipParseError: for anything malformed; ``status`` is the code to answer with and
            ``partial`` what could be read of Via/From/To/Call-ID/CSeq.
    """
    if len(data) > limits.max_message_size:
        raise SipParseError("message too large", status=513)
    if data[:2] == b"\r\n":
        # RFC 3261 §7.5: leading CRLFs before the start line are ignored.
        data = data.lstrip(b"\r\n")
    end = data.find(b"\r\n\r\n")
    if end < 0:
        raise SipParseError("no empty line after the headers")
    try:
        head = data[:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _early(data, f"header section is not UTF-8 (byte {exc.start})") from None
    quoted_nul = False
    if "\x00" in head:
        # RFC 3261 §25.1 quoted-pair takes %x00: a NUL is legal escaped in a quoted string
        # (RFC 4475 §3.1.1.2 intmeth), nowhere else.
        if not _nuls_all_quoted(head):
            raise _early(data, "NUL byte in the header section")
        quoted_nul = True
    head_lines = head.split("\r\n")
    # Joined with NUL (refused above, so it cannot be part of a line) the lines show any CR
    # or LF that is not a line break with two C-level searches, and serve the name scan.
    joined = "\x00".join(head_lines)
    if "\r" in joined or "\n" in joined:
        # A bare CR or LF inside a line would let a header hide inside another one.
        raise _early(data, "bare CR or LF in the header section")
    start = head_lines[0]

    method: str | None = None
    status = 0
    reason = ""
    ruri = ""
    if start.startswith("SIP/"):
        version, _, rest = start.partition(" ")
        code, _, reason = rest.partition(" ")
        if version.upper() != "SIP/2.0":
            raise SipParseError(f"unsupported version {version[:20]!r}", status=505)
        if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] == "0":
            raise SipParseError(f"bad status code {code[:10]!r}")
        status = int(code)
        if status < 100 or status > 699:
            raise SipParseError(f"status code out of range: {status}")
    else:
        m = _REQUEST_LINE.fullmatch(start)
        if m is not None and len(start) <= limits.max_line_length:
            method, ruri = m.groups()
        else:
            method, ruri = _request_line(start, data, limits)
        if "?" in ruri and _has_uri_headers(ruri):
            # RFC 4475 §3.1.2.11 (escruri): a proxy must never forward escaped headers in a
            # Request-URI, nor turn them into header fields; refusing is the simple answer.
            raise SipParseError("escaped headers in the Request-URI",
                                partial=_salvage_raw(data, method))

    # The name scan reads NUL as a line break: with a NUL inside a value, the exact path.
    names_ = None if quoted_nul else _fast_header_names(joined, head_lines, limits)
    if names_ is not None:
        names = names_
        lines = head_lines[1:]
    else:
        folded = "\r\n " in head or "\r\n\t" in head
        names, lines, err = _split_header_lines(head_lines[1:], limits, folded, len(head))
        if err is not None:
            raise err.with_partial(_partial(method, names, lines))
    try:
        if not _MANDATORY_SET.issubset(names):
            missing = [key for key in _MANDATORY if key not in names]
            raise SipParseError(f"missing mandatory header {missing[0]!r}")
        body_start = end + 4
        available = len(data) - body_start
        # Inline rather than a helper: this runs for every message.
        if "content-length" in names:
            cl_line = lines[names.index("content-length")]
            text = cl_line[cl_line.index(":") + 1 :].strip()
            if not text.isdigit() or not text.isascii() or len(text) > 10:
                raise SipParseError(f"bad Content-Length {text[:20]!r}")
            length = int(text)
            if length > available:
                raise SipParseError(
                    f"Content-Length {length} but only {available} bytes of body"
                )
        else:
            if stream and available:
                raise SipParseError("missing Content-Length on a stream")
            length = available
        if length > limits.max_body_size:
            raise SipParseError("body too large", status=413)
        cseq_line = lines[names.index("cseq")]
        cseq = _cseq_in_line(cseq_line)
        if cseq is None:
            value = cseq_line[cseq_line.index(":") + 1 :]
            if "\n" in value:
                # RFC 3261 §7.3.1: a folded value (RFC 4475 wsinv) reads as one SP.
                value = " ".join(value.split())
            cseq = parse_cseq(value.strip())
        if method is not None and cseq.method != method:
            raise SipParseError(f"CSeq method {cseq.method!r} differs from {method!r}")
    except SipParseError as exc:
        raise exc.with_partial(_partial(method, names, lines)) from None

    body = data[body_start : body_start + length]
    raw = data if body_start + length == len(data) else data[: body_start + length]
    msg: Request | Response
    if method is not None:
        msg = Request(method, ruri, names, lines, body, raw)
    else:
        msg = Response(status, reason, names, lines, body, raw)
    # The CSeq was parsed to validate it; keep it rather than parse it again on first use.
    msg._cseq = cseq
    return msg


class StreamParser:
    """Frames SIP messages on a byte stream (TCP) by Content-Length (RFC 3261 §18.3).

    ``feed`` buffers bytes; ``next_message`` returns the next complete message or None. A
    malformed but well-framed message raises SipParseError and the stream goes on; when framing
    itself is lost (no end of headers within the limit, a bad Content-Length) the parser is
    ``broken``: every later call raises and the connection should be closed.
    """

    __slots__ = ("_buf", "_limits", "broken", "keepalives")

    def __init__(self, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self._buf = bytearray()
        self._limits = limits
        self.broken: SipParseError | None = None
        self.keepalives = 0

    @property
    def buffered(self) -> int:
        """Bytes waiting for the rest of their message."""
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        """Append received bytes."""
        self._buf += data

    def next_message(self) -> Request | Response | None:
        """The next complete message, or None if more bytes are needed.

        Raises:
            SipParseError: a malformed message (skipped), or a broken stream (``broken`` set).
        """
        frame = self.next_frame()
        if frame is None:
            return None
        return parse_message(frame, limits=self._limits, stream=True)

    def next_frame(self) -> bytes | None:
        """The next complete message's bytes, unparsed (for readers with their own fast
        scanner, like the load generator), or None if more bytes are needed.

        Raises:
            SipParseError: a broken stream (``broken`` set): the connection should be closed.
        """
        if self.broken is not None:
            raise self.broken
        buf = self._buf
        # RFC 5626 §4.4.1 keepalives are bare CRLFs between messages.
        skip = 0
        while buf[skip : skip + 2] == b"\r\n":
            skip += 2
        if skip:
            self.keepalives += skip // 4 or 1
            del buf[:skip]
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > self._limits.max_message_size:
                self.broken = SipParseError("header section never ends", status=513)
                raise self.broken
            return None
        length = self._frame_length(bytes(buf[:end]))
        total = end + 4 + length
        if total > self._limits.max_message_size:
            self.broken = SipParseError("message too large", status=513)
            raise self.broken
        if len(buf) < total:
            return None
        frame = bytes(buf[:total])
        del buf[:total]
        return frame

    def _frame_length(self, head: bytes) -> int:
        # Only the Content-Length line matters for framing; find it without decoding the rest.
        for line in head.split(b"\r\n")[1:]:
            colon = line.find(b":")
            if colon <= 0:
                continue
            name = line[:colon].strip().lower()
            if name in (b"content-length", b"l"):
                text = line[colon + 1 :].strip()
                if not text.isdigit() or len(text) > 10:
                    self.broken = SipParseError(f"bad Content-Length {text[:20]!r}")
                    raise self.broken
                return int(text)
        return 0
