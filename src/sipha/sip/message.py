"""SIP messages (RFC 3261 §7) kept as the lines they arrived as.

Theory of operation
-------------------
A message is its start line, a list of header lines and a body. The parser splits the header
section once and records, per line, the normalized header name (lower case, compact forms
expanded) next to the line exactly as it was written. Nothing else is parsed up front: a value is
unfolded and parsed only when somebody asks for it, and the parsed form is cached until the
message is edited.

Serialization is splicing: an untouched message returns the very bytes it was parsed from; an
edited one joins its (mostly untouched) lines again, so a proxy that prepends a Via or decrements
Max-Forwards rewrites exactly the lines it touched and nothing else.

Lookups use ``list.index`` on the names list, a C loop, which beats building a dict for the dozen
headers a typical message carries. The parsed values every node reads (Call-ID, CSeq, top Via,
From, To) are cached in slots of their own rather than in a dict: a slot read is the cheapest
attribute access Python has, and a message is built per datagram. An edit empties only the
slot of the header it touched.

The top Via is read with one regex match over its whole header line when the line holds one
value of the common shape (:func:`~sipha.sip.via._via_in_line`); otherwise the value is
unfolded, split on commas and parsed by :func:`~sipha.sip.via.parse_via`. The edits every hop
makes (push a Via, add a Record-Route, decrement Max-Forwards, stamp received/rport) write the
line directly from a name they already know instead of resolving its spelling again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .address import NameAddr, parse_contact_list, parse_name_addr
from .errors import SipParseError
from .headers import (
    MULTI_VALUED,
    CSeq,
    canonical_name,
    normalize_name,
    parse_cseq,
    parse_uint,
    split_comma,
)
from .status import reason_phrase
from .uri import AbsoluteUri, SipUri, TelUri, parse_uri
from .via import Via, _via_in_line, parse_via, parse_via_list

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Literal

_CRLF = "\r\n"


# Which cache slot an edit of a header (by normalized name) makes stale.
_CACHE_SLOTS: dict[str, str] = {
    "call-id": "_call_id", "cseq": "_cseq", "via": "_via", "from": "_from", "to": "_to",
}


def _unfold(value: str) -> str:
    # RFC 3261 §7.3.1: a line break followed by white space is one SP.
    if "\n" not in value:
        return value.strip()
    return " ".join(part.strip() for part in value.replace("\r\n", "\n").split("\n")).strip()


class Message:
    """Common part of :class:`Request` and :class:`Response`.

    Header access is by full or compact name, case-insensitive. Values are returned unfolded and
    stripped; multi-valued headers (Via, Route, Contact, ...) are split on their commas by
    :meth:`get_all`. Lazy accessors raise :class:`SipParseError` for a malformed value.
    """

    __slots__ = ("_call_id", "_cseq", "_from", "_lines", "_names", "_raw", "_to", "_via", "body")

    def __init__(self, names: list[str], lines: list[str], body: bytes, raw: bytes | None) -> None:
        # Request and Response set these same slots themselves rather than call this: one
        # Python call less per parsed datagram. Keep the three in step.
        self._names = names
        self._lines = lines
        self.body = body
        self._raw = raw
        self._call_id: str | None = None
        self._cseq: CSeq | None = None
        self._via: Via | None = None
        self._from: NameAddr | None = None
        self._to: NameAddr | None = None

    # -- start line (subclasses) -------------------------------------------------------------
    # Not an ABC: a mypyc-compiled class with the ABCMeta metaclass corrupted memory under the
    # garbage collector (the core's tests crashed in GC with message.py compiled); Request and
    # Response both override this.
    def start_line(self) -> str:
        """The request or status line, without CRLF."""
        raise NotImplementedError

    # -- generic header access -----------------------------------------------------------------
    def _value_at(self, i: int) -> str:
        line = self._lines[i]
        return _unfold(line[line.index(":") + 1 :])

    def _index(self, key: str) -> int:
        # Two C scans of a dozen names cost less than the ValueError of a missing one.
        names = self._names
        return names.index(key) if key in names else -1

    def has(self, name: str) -> bool:
        """True if a header of that name (full or compact, any case) is present."""
        return normalize_name(name) in self._names

    def __contains__(self, name: str) -> bool:
        # Spelled out, not ``__contains__ = has``: mypyc compiles no class-level aliases.
        return normalize_name(name) in self._names

    def get(self, name: str) -> str | None:
        """The value of the first header of that name, unfolded, or None."""
        i = self._index(normalize_name(name))
        return None if i < 0 else self._value_at(i)

    def get_all(self, name: str) -> list[str]:
        """Every value of that name, in order; comma lists split for multi-valued headers."""
        key = normalize_name(name)
        names = self._names
        out: list[str] = []
        split = key in MULTI_VALUED
        for i, n in enumerate(names):
            if n == key:
                v = self._value_at(i)
                if split and "," in v:
                    out.extend(split_comma(v))
                else:
                    out.append(v)
        return out

    @property
    def headers(self) -> list[tuple[str, str]]:
        """(name as written, unfolded value) for every header line, in order."""
        out = []
        for line in self._lines:
            colon = line.index(":")
            out.append((line[:colon].strip(), _unfold(line[colon + 1 :])))
        return out

    # -- editing: each one touches only the lines it names --------------------------------------
    def _touch(self, key: str | None = None) -> None:
        # Only the edited header's parsed value goes stale: a proxy that pushes a Via still
        # reads the CSeq it parsed before without parsing it again.
        self._raw = None
        if key is None:
            self._call_id = self._cseq = self._via = self._from = self._to = None
        else:
            slot = _CACHE_SLOTS.get(key)
            if slot is not None:
                setattr(self, slot, None)

    @staticmethod
    def _line(name: str, value: str) -> str:
        return f"{canonical_name(name)}: {value}"

    def add_header(self, name: str, value: str) -> None:
        """Append a header line after all others."""
        key = normalize_name(name)
        self._names.append(key)
        self._lines.append(self._line(name, value))
        self._touch(key)

    def insert_header(self, name: str, value: str) -> None:
        """Insert a header line above the first one of the same name (or at the top)."""
        self._insert(normalize_name(name), self._line(name, value))

    def _insert(self, key: str, line: str) -> None:
        names = self._names
        if key in names:
            i = names.index(key)
        else:
            # A new kind of header goes right below the Vias, where readers of the wire expect
            # routing headers to be.
            i = 0
            if key != "via":
                while i < len(names) and names[i] == "via":
                    i += 1
        names.insert(i, key)
        self._lines.insert(i, line)
        self._touch(key)

    def set_header(self, name: str, value: str) -> None:
        """Replace the first header of that name (keeping its spelling), drop the others."""
        key = normalize_name(name)
        i = self._index(key)
        if i < 0:
            self.add_header(name, value)
            return
        self._replace_value(i, value)
        j = len(self._names) - 1
        while j > i:
            if self._names[j] == key:
                del self._names[j]
                del self._lines[j]
            j -= 1

    def remove_header(self, name: str) -> int:
        """Remove every header of that name; return how many lines went."""
        key = normalize_name(name)
        keep = [i for i, n in enumerate(self._names) if n != key]
        removed = len(self._names) - len(keep)
        if removed:
            self._names = [self._names[i] for i in keep]
            self._lines = [self._lines[i] for i in keep]
            self._touch(key)
        return removed

    def _replace_value(self, i: int, value: str) -> None:
        line = self._lines[i]
        self._lines[i] = f"{line[: line.index(':')]}: {value}"
        self._touch(self._names[i])

    def _pop_first_value(self, key: str) -> str | None:
        # Removes the topmost value of a multi-valued header, whether it is alone on its line
        # or the first of a comma list (RFC 3261 §7.3.1 makes both forms equivalent).
        i = self._index(key)
        if i < 0:
            return None
        value = self._value_at(i)
        parts = split_comma(value) if "," in value else [value]
        if not parts:
            raise SipParseError(f"empty {canonical_name(key)} header")
        if len(parts) <= 1:
            del self._names[i]
            del self._lines[i]
            self._touch(key)
        else:
            self._replace_value(i, ", ".join(parts[1:]))
        return parts[0]

    def push_via(self, value: str) -> None:
        """Add a Via value on top (RFC 3261 §16.6 step 8)."""
        # insert_header("via", value) without resolving a spelling we know: every hop does it.
        self._insert("via", f"Via: {value}")

    def pop_via(self) -> str | None:
        """Remove the topmost Via value (RFC 3261 §16.7 step 3); return it."""
        return self._pop_first_value("via")

    def set_top_via(self, value: str) -> None:
        """Rewrite the topmost Via value (e.g. to add received/rport, RFC 3581 §4)."""
        i = self._index("via")
        if i < 0:
            raise SipParseError("no Via header")
        if "," in self._lines[i]:  # only a list needs the value unfolded and split
            rest = split_comma(self._value_at(i))[1:]
            value = ", ".join([value, *rest])
        self._replace_value(i, value)

    def set_via_received(self, host: str, port: int) -> bool:
        """Stamp the top Via with ``received``/``rport`` per RFC 3261 §18.2.1 and RFC 3581.

        Returns True if the Via needed a change.
        """
        via = self.via
        # Via.with_received without serializing the Via twice to learn that nothing changed.
        params = via._received_params(host, port)
        if params is None:
            return False
        self.set_top_via(via._format(params))
        return True

    def add_record_route(self, value: str) -> None:
        """Add a Record-Route value on top (RFC 3261 §16.6 step 4)."""
        self._insert("record-route", f"Record-Route: {value}")

    def pop_route(self) -> str | None:
        """Remove the topmost Route value (RFC 3261 §16.4); return it."""
        return self._pop_first_value("route")

    def set_body(self, body: bytes, content_type: str | None = None) -> None:
        """Replace the body, keeping Content-Length (and optionally Content-Type) true."""
        self.body = body
        self.set_header("content-length", str(len(body)))
        if content_type is not None:
            self.set_header("content-type", content_type)
        self._touch("content-length")

    # -- serialization ------------------------------------------------------------------------
    def __bytes__(self) -> bytes:
        raw = self._raw
        if raw is None:
            # The two empty items end the header section with CRLF CRLF in the same join.
            head = _CRLF.join([self.start_line(), *self._lines, "", ""])
            raw = head.encode("utf-8") + self.body
            self._raw = raw
        return raw

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Message)
        return bytes(self) == bytes(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.start_line()!r} call-id={self.get('call-id')!r}>"

    # -- cached typed accessors ---------------------------------------------------------------
    def _required(self, key: str) -> str:
        try:
            i = self._names.index(key)
        except ValueError:
            raise SipParseError(f"missing {canonical_name(key)} header") from None
        line = self._lines[i]
        value = line[line.index(":") + 1 :]
        # _unfold inline: a folded value is rare and this runs several times per message.
        return value.strip() if "\n" not in value else _unfold(value)

    @property
    def call_id(self) -> str:
        """The Call-ID value; raises SipParseError if absent."""
        v = self._call_id
        if v is None:
            v = self._call_id = self._required("call-id")
        return v

    @property
    def cseq(self) -> CSeq:
        """The parsed CSeq."""
        v = self._cseq
        if v is None:
            v = self._cseq = parse_cseq(self._required("cseq"))  # parse_message caches it
        return v

    @property
    def via(self) -> Via:
        """The topmost Via, parsed."""
        v = self._via
        if v is None:
            try:
                line = self._lines[self._names.index("via")]
            except ValueError:
                raise SipParseError("missing Via header") from None
            v = _via_in_line(line)  # a single common value: one match over the line
            if v is None:
                value = _unfold(line[line.index(":") + 1 :])
                if "," in value:
                    parts = split_comma(value)
                    if not parts:
                        raise SipParseError("empty Via header")
                    value = parts[0]
                v = parse_via(value)
            self._via = v
        return v

    @property
    def vias(self) -> list[Via]:
        """Every Via, top first."""
        out: list[Via] = []
        for value in (self._value_at(i) for i, n in enumerate(self._names) if n == "via"):
            out.extend(parse_via_list(value))
        return out

    @property
    def from_(self) -> NameAddr:
        """The From header, parsed."""
        v = self._from
        if v is None:
            v = self._from = parse_name_addr(self._required("from"))
        return v

    @property
    def to(self) -> NameAddr:
        """The To header, parsed."""
        v = self._to
        if v is None:
            v = self._to = parse_name_addr(self._required("to"))
        return v

    @property
    def from_tag(self) -> str | None:
        return self.from_.tag

    @property
    def to_tag(self) -> str | None:
        return self.to.tag

    @property
    def contacts(self) -> list[NameAddr] | Literal["*"]:
        """Contact values (RFC 3261 §20.10); the string ``"*"`` for a wildcard."""
        values = [self._value_at(i) for i, n in enumerate(self._names) if n == "contact"]
        if not values:
            return []
        if len(values) == 1:
            return parse_contact_list(values[0])
        out: list[NameAddr] = []
        for v in values:
            parsed = parse_contact_list(v)
            if parsed == "*":
                raise SipParseError("Contact: * mixed with other contacts")
            out.extend(parsed)
        return out

    @property
    def routes(self) -> list[NameAddr]:
        return [parse_name_addr(v) for v in self.get_all("route")]

    @property
    def record_routes(self) -> list[NameAddr]:
        return [parse_name_addr(v) for v in self.get_all("record-route")]

    @property
    def max_forwards(self) -> int | None:
        v = self.get("max-forwards")
        return None if v is None else parse_uint(v, name="Max-Forwards", maximum=255)

    @property
    def expires(self) -> int | None:
        v = self.get("expires")
        return None if v is None else parse_uint(v, name="Expires", maximum=2**32 - 1)

    @property
    def content_length(self) -> int | None:
        v = self.get("content-length")
        return None if v is None else parse_uint(v, name="Content-Length", maximum=2**31 - 1)

    def decrement_max_forwards(self, default: int = 70) -> int:
        """Decrement Max-Forwards in place (RFC 3261 §16.6 step 3); add it if absent.

        Returns the new value; the caller answers 483 when the value it saw was already 0.
        """
        i = self._index("max-forwards")
        if i < 0:
            self.add_header("Max-Forwards", str(default - 1))
            return default - 1
        line = self._lines[i]
        colon = line.index(":")
        text = line[colon + 1 :].strip()
        # Every hop does this: the plain form ("70") is read directly, anything else (white
        # space inside, folding, more digits) by parse_uint, which then decides alone.
        value = int(text) if text.isdigit() and len(text) < 4 and text.isascii() else -1
        if not 0 <= value <= 255:
            value = parse_uint(_unfold(line[colon + 1 :]), name="Max-Forwards", maximum=255)
        value -= 1
        if value < 0:
            raise SipParseError("Max-Forwards exhausted", status=483)
        self._lines[i] = f"{line[:colon]}: {value}"
        self._raw = None  # no cached value depends on Max-Forwards
        return value


class Request(Message):
    """A SIP request. ``method`` is case-sensitive (RFC 3261 §7.1)."""

    __slots__ = ("_ruri", "method", "ruri")

    def __init__(
        self,
        method: str,
        ruri: str,
        names: list[str],
        lines: list[str],
        body: bytes = b"",
        raw: bytes | None = None,
    ) -> None:
        # The slots of Message.__init__, set inline (see there).
        self._names = names
        self._lines = lines
        self.body = body
        self._raw = raw
        self._call_id = self._cseq = self._via = self._from = self._to = None
        self.method = method
        self.ruri = ruri
        self._ruri: SipUri | TelUri | AbsoluteUri | None = None

    is_request = True

    def start_line(self) -> str:
        return f"{self.method} {self.ruri} SIP/2.0"

    @property
    def uri(self) -> SipUri | TelUri | AbsoluteUri:
        """The Request-URI, parsed (lazily)."""
        u = self._ruri
        if u is None:
            u = self._ruri = parse_uri(self.ruri)
        return u

    def set_uri(self, uri: str | SipUri | TelUri | AbsoluteUri) -> None:
        """Retarget the request (RFC 3261 §16.6 step 2)."""
        self.ruri = str(uri)
        self._ruri = None if isinstance(uri, str) else uri
        self._raw = None  # no parsed header depends on the Request-URI

    def copy(self) -> Request:
        """An independent copy (a proxy forks or retries from a pristine request)."""
        r = Request(self.method, self.ruri, list(self._names), list(self._lines), self.body)
        r._raw = self._raw
        return r


class Response(Message):
    """A SIP response."""

    __slots__ = ("reason", "status")

    def __init__(
        self,
        status: int,
        reason: str,
        names: list[str],
        lines: list[str],
        body: bytes = b"",
        raw: bytes | None = None,
    ) -> None:
        # The slots of Message.__init__, set inline (see there).
        self._names = names
        self._lines = lines
        self.body = body
        self._raw = raw
        self._call_id = self._cseq = self._via = self._from = self._to = None
        self.status = status
        self.reason = reason

    is_request = False

    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    @property
    def method(self) -> str:
        """The method of the request this answers (from CSeq)."""
        return self.cseq.method

    def copy(self) -> Response:
        r = Response(self.status, self.reason, list(self._names), list(self._lines), self.body)
        r._raw = self._raw
        return r


def _build_lines(headers: Iterable[tuple[str, str]]) -> tuple[list[str], list[str]]:
    names: list[str] = []
    lines: list[str] = []
    for name, value in headers:
        names.append(normalize_name(name))
        lines.append(f"{canonical_name(name)}: {value}")
    return names, lines


def build_request(
    method: str,
    uri: str | SipUri | TelUri | AbsoluteUri,
    headers: Sequence[tuple[str, str]],
    body: bytes = b"",
) -> Request:
    """Build a request from (name, value) pairs; Content-Length is added (or corrected)."""
    names, lines = _build_lines(h for h in headers if normalize_name(h[0]) != "content-length")
    names.append("content-length")
    lines.append(f"Content-Length: {len(body)}")
    return Request(method, str(uri), names, lines, body)


def build_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    copy_record_route: bool = False,
) -> Response:
    """Build a response to ``request`` per RFC 3261 §8.2.6.2.

    Via, From, To, Call-ID and CSeq lines are copied verbatim; ``to_tag`` is added to To when it
    has none. Record-Route is copied when asked (dialog-creating responses, §12.1.1).
    """
    names: list[str] = []
    lines: list[str] = []
    src_names = request._names
    src_lines = request._lines
    for i, n in enumerate(src_names):
        if n in ("via", "from", "call-id", "cseq") or (copy_record_route and n == "record-route"):
            names.append(n)
            lines.append(src_lines[i])
        elif n == "to":
            line = src_lines[i]
            if to_tag is not None and request.to.tag is None:
                line = f"{line.rstrip()};tag={to_tag}"
            names.append(n)
            lines.append(line)
    extra_names, extra_lines = _build_lines(
        h for h in headers if normalize_name(h[0]) != "content-length"
    )
    names.extend(extra_names)
    lines.extend(extra_lines)
    names.append("content-length")
    lines.append(f"Content-Length: {len(body)}")
    return Response(status, reason or reason_phrase(status), names, lines, body)
