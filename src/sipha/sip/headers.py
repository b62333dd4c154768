"""Header names and the small header-value grammars shared by every SIP header.

Theory of operation
-------------------
The message parser keeps header values as raw (unfolded) strings and calls into this module,
``uri``, ``address`` and ``via`` only when a value is read. Every function here is linear in
the length of its input: the common case goes through C-level ``str`` methods (``split``,
``partition``, ``find``, ``strip``) and only input that contains quoted strings falls back to a
single left-to-right character scan. Nothing here backtracks.

Character-class checks use the "strip trick": ``not s.strip(CHARS)`` is true exactly when every
character of ``s`` is in ``CHARS`` (strip removes a run from each end and stops at the first
character outside the set). It runs in C and allocates at most one string.

CSeq is parsed for every message, so :func:`parse_cseq` reads the usual ``4711 INVITE`` with a
``partition`` and two character checks, and ``_cseq_in_line`` with one anchored regex over the
whole header line; any other spelling goes to the general grammar, which alone decides errors.

Any malformed input raises :class:`~sipha.sip.errors.SipParseError` (status 400); misuse of the
API (e.g. quoting a string with a bare CR) raises ``ValueError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    pass

from sipha.sip.errors import SipParseError
from sipha.sip.native import is_compiled, slot_setter

__all__ = [
    "CANONICAL_NAMES",
    "COMPACT_FORMS",
    "MULTI_VALUED",
    "TOKEN_CHARS",
    "CSeq",
    "canonical_name",
    "format_params",
    "is_token",
    "normalize_name",
    "parse_cseq",
    "parse_params",
    "parse_uint",
    "quote",
    "scan_quoted",
    "split_comma",
    "split_lws",
    "unquote",
]

_ALNUM: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS: Final = _ALNUM + "-.!%*_+`'~"
# RFC 3261 §25.1: gen-value = token / host / quoted-string; host adds ":" "[" "]" (IPv6).
_GEN_VALUE_CHARS: Final = TOKEN_CHARS + ":[]"
_WS: Final = " \t"

# RFC 3261 §7.3.3 and §20, plus the compact forms registered since (RFC 3265, 3515, 3892,
# 4028, 3841, 4474). Values are the lowercase full names.
COMPACT_FORMS: Final[dict[str, str]] = {
    "i": "call-id",
    "m": "contact",
    "e": "content-encoding",
    "l": "content-length",
    "c": "content-type",
    "f": "from",
    "s": "subject",
    "k": "supported",
    "t": "to",
    "v": "via",
    "o": "event",
    "u": "allow-events",
    "r": "refer-to",
    "b": "referred-by",
    "x": "session-expires",
    "a": "accept-contact",
    "d": "request-disposition",
    "j": "reject-contact",
    "y": "identity",
    "n": "identity-info",
}

_CANONICAL_SPELLINGS: Final = (
    "Accept",
    "Accept-Contact",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "History-Info",
    "Identity",
    "Identity-Info",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Min-SE",
    "Organization",
    "P-Asserted-Identity",
    "P-Preferred-Identity",
    "Path",
    "Priority",
    "Privacy",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "RAck",
    "Reason",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reject-Contact",
    "Replaces",
    "Reply-To",
    "Request-Disposition",
    "Require",
    "Retry-After",
    "Route",
    "RSeq",
    "Security-Client",
    "Security-Server",
    "Security-Verify",
    "Server",
    "Service-Route",
    "Session-Expires",
    "SIP-ETag",
    "SIP-If-Match",
    "Subject",
    "Subscription-State",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
)
CANONICAL_NAMES: Final[dict[str, str]] = {n.lower(): n for n in _CANONICAL_SPELLINGS}

# Headers whose value is a comma-separated list, so several header lines may be combined into
# one and one line may carry several values (RFC 3261 §7.3.1). Authorization-style headers are
# deliberately absent: their credentials contain commas but are not lists.
MULTI_VALUED: Final[frozenset[str]] = frozenset(
    {
        "accept",
        "accept-contact",
        "accept-encoding",
        "accept-language",
        "alert-info",
        "allow",
        "allow-events",
        "call-info",
        "contact",
        "content-encoding",
        "content-language",
        "error-info",
        "history-info",
        "in-reply-to",
        "p-asserted-identity",
        "p-preferred-identity",
        "path",
        "proxy-require",
        "reason",
        "record-route",
        "reject-contact",
        "request-disposition",
        "require",
        "route",
        "security-client",
        "security-server",
        "security-verify",
        "service-route",
        "supported",
        "unsupported",
        "via",
        "warning",
    }
)


# The spellings callers use (canonical, lower case, compact), resolved once: nodes normalize a
# name on every header access.
_NORMALIZED: Final[dict[str, str]] = {
    **{n: n.lower() for n in _CANONICAL_SPELLINGS},
    **{n.lower(): n.lower() for n in _CANONICAL_SPELLINGS},
    **COMPACT_FORMS,
    **{c.upper(): full for c, full in COMPACT_FORMS.items()},
}


def normalize_name(name: str) -> str:
    """Lowercase ``name`` and expand a compact form (``"v"`` -> ``"via"``)."""
    known = _NORMALIZED.get(name)
    if known is not None:
        return known
    lowered = name.lower()
    if len(lowered) == 1:
        return COMPACT_FORMS.get(lowered, lowered)
    return lowered


def canonical_name(name: str) -> str:
    """The conventional spelling of a header name (``"call-id"`` -> ``"Call-ID"``).

    Compact forms are expanded; unknown names are title-cased per dash-separated word.
    """
    lowered = normalize_name(name)
    known = CANONICAL_NAMES.get(lowered)
    if known is not None:
        return known
    return "-".join(part[:1].upper() + part[1:] for part in lowered.split("-"))


def split_lws(s: str) -> tuple[str, str]:
    """Split ``s`` at its first run of SP/HTAB after stripping it: ``"a  b c"`` ->
    ``("a", "b c")``. The second part is ``""`` when there is no whitespace inside.
    """
    s = s.strip(_WS)
    cut = s.find(" ")
    tab = s.find("\t")
    if cut < 0 or 0 <= tab < cut:
        cut = tab
    if cut < 0:
        return s, ""
    return s[:cut], s[cut + 1 :].lstrip(_WS)


def is_token(s: str) -> bool:
    """True when ``s`` is a non-empty RFC 3261 token."""
    return bool(s) and not s.strip(TOKEN_CHARS)


# --- quoted strings ------------------------------------------------------------------------


def scan_quoted(s: str, start: int) -> tuple[str, int]:
    """Read the quoted-string whose opening quote is ``s[start]``.

    Returns the unescaped content and the index just past the closing quote.
    RFC 3261 §25.1: quoted-string = DQUOTE *(qdtext / quoted-pair) DQUOTE.
    """
    end = s.find('"', start + 1)
    if end < 0:
        raise SipParseError("unterminated quoted string")
    body = s[start + 1 : end]
    if "\\" not in body:
        # Fast path: no escapes, so the first quote closes the string.
        if "\r" in body or "\n" in body:
            raise SipParseError("bare CR or LF in quoted string")
        return body, end + 1
    out: list[str] = []
    i = start + 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            i += 1
            if i >= n:
                break
            c = s[i]
            # RFC 3261 §25.1: quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
            if c in "\r\n" or ord(c) > 0x7F:
                raise SipParseError("invalid escape in quoted string")
        elif c in "\r\n":
            raise SipParseError("bare CR or LF in quoted string")
        out.append(c)
        i += 1
    raise SipParseError("unterminated quoted string")


def unquote(s: str) -> str:
    """Unquote a whole quoted-string (``'"a\\\\"b"'`` -> ``'a"b'``).

    Raises SipParseError unless ``s`` is exactly one well-formed quoted-string.
    """
    if not s.startswith('"'):
        raise SipParseError("expected a quoted string")
    value, end = scan_quoted(s, 0)
    if end != len(s):
        raise SipParseError("text after closing quote")
    return value


def quote(s: str) -> str:
    """Quote ``s`` as a quoted-string, escaping backslash and double quote.

    Raises ValueError for CR or LF, which no quoted-string may carry.
    """
    if "\r" in s or "\n" in s:
        raise ValueError("CR/LF cannot be quoted")
    if "\\" in s or '"' in s:
        s = s.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


# --- comma lists ---------------------------------------------------------------------------


def split_comma(value: str) -> list[str]:
    """Split a list header value on commas outside quoted strings and ``<...>``.

    Elements are stripped of whitespace; empty elements are dropped (RFC 3261 §7.3.1 allows
    null list elements). Raises SipParseError on an unterminated quote or ``<``.
    """
    if '"' not in value and "<" not in value:
        # Fast path: nothing can hide a comma.
        return [p for p in (part.strip(_WS) for part in value.split(",")) if p]
    parts: list[str] = []
    start = 0
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == ",":
            part = value[start:i].strip(_WS)
            if part:
                parts.append(part)
            start = i + 1
        elif c == '"':
            _, i = scan_quoted(value, i)
            continue
        elif c == "<":
            close = value.find(">", i + 1)
            if close < 0:
                raise SipParseError("unterminated '<' in header value")
            i = close
        i += 1
    part = value[start:].strip(_WS)
    if part:
        parts.append(part)
    return parts


# --- generic parameters --------------------------------------------------------------------


def _check_param(name: str, value: str | None) -> None:
    if not name or name.strip(TOKEN_CHARS):
        raise SipParseError(f"invalid parameter name {name!r}")
    if value is not None and (not value or value.strip(_GEN_VALUE_CHARS)):
        raise SipParseError(f"invalid value for parameter {name!r}")


def parse_params(text: str) -> dict[str, str | None]:
    """Parse ``;name=value;flag`` generic parameters (RFC 3261 §25.1 generic-param).

    Whitespace is allowed around ``;`` and ``=``. Names are lowercased; a flag maps to ``None``;
    quoted values are returned unquoted and unescaped. Order is kept and the first occurrence
    of a repeated name wins. An empty or all-whitespace ``text`` gives ``{}``.
    Raises SipParseError for anything else.
    """
    params: dict[str, str | None] = {}
    if '"' not in text:
        pieces = text.split(";")
        if pieces[0].strip(_WS):
            raise SipParseError(f"unexpected text before parameters: {pieces[0]!r}")
        for piece in pieces[1:]:
            raw_name, eq, raw_value = piece.partition("=")
            name = raw_name.strip(_WS).lower()
            value = raw_value.strip(_WS) if eq else None
            _check_param(name, value)
            if name not in params:
                params[name] = value
        return params
    return _parse_params_quoted(text, params)


def _parse_params_quoted(text: str, params: dict[str, str | None]) -> dict[str, str | None]:
    # Slow path: a value may be a quoted string holding ';' or '='.
    i = 0
    n = len(text)
    while i < n and text[i] in _WS:
        i += 1
    while i < n:
        if text[i] != ";":
            raise SipParseError(f"expected ';' in parameters at {text[i : i + 20]!r}")
        i += 1
        j = i
        while j < n and text[j] not in ";=":
            j += 1
        name = text[i:j].strip(_WS).lower()
        value: str | None = None
        i = j
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in _WS:
                i += 1
            if i < n and text[i] == '"':
                if not name or name.strip(TOKEN_CHARS):
                    raise SipParseError(f"invalid parameter name {name!r}")
                value, i = scan_quoted(text, i)
                while i < n and text[i] in _WS:
                    i += 1
                if name not in params:
                    params[name] = value
                continue
            j = i
            while j < n and text[j] != ";":
                j += 1
            value = text[i:j].strip(_WS)
            i = j
        _check_param(name, value)
        if name not in params:
            params[name] = value
    return params


def format_params(params: dict[str, str | None]) -> str:
    """Serialize generic parameters as ``;name=value;flag``, quoting values that need it."""
    out: list[str] = []
    for name, value in params.items():
        if value is None:
            out.append(f";{name}")
        elif value and not value.strip(_GEN_VALUE_CHARS):
            out.append(f";{name}={value}")
        else:
            out.append(f";{name}={quote(value)}")
    return "".join(out)


# --- scalars -------------------------------------------------------------------------------

_DIGITS: Final = "0123456789"


def parse_uint(value: str, *, name: str, maximum: int, clamp: bool = False) -> int:
    """Parse a decimal unsigned integer header value (Max-Forwards, Expires, Content-Length).

    Leading and trailing whitespace is ignored. Values above ``maximum`` raise, or become
    ``maximum`` with ``clamp=True`` (RFC 3261 §20.19 lets a huge Expires mean "the longest").
    Raises SipParseError naming the header otherwise.
    """
    digits = value.strip(_WS)
    if not digits or digits.strip(_DIGITS):
        raise SipParseError(f"invalid {name}: {value[:40]!r}")
    # Bound the work int() does: anything longer than this is over every maximum we use.
    if len(digits.lstrip("0")) > 20:
        if clamp:
            return maximum
        raise SipParseError(f"{name} out of range")
    number = int(digits)
    if number > maximum:
        if clamp:
            return maximum
        raise SipParseError(f"{name} out of range")
    return number


@dataclass(frozen=True, slots=True)
class CSeq:
    """A CSeq header value (RFC 3261 §20.16): sequence number and method."""

    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


_CSEQ_MAX: Final = 2**31 - 1

# A frozen dataclass's __init__ sets each field with object.__setattr__; storing through the
# slot descriptors does the same at about half the cost, and every parsed message has a CSeq.
_COMPILED: Final = is_compiled(__file__)
_new_object: Final = object.__new__
_set_seq: Final = slot_setter(CSeq, "seq", compiled=_COMPILED)
_set_method: Final = slot_setter(CSeq, "method", compiled=_COMPILED)


def parse_cseq(value: str) -> CSeq:
    """Parse ``"4711 INVITE"``. The number must be 0..2**31-1 and the method a token.

    Raises SipParseError otherwise.
    """
    number, _, method = value.partition(" ")
    # The form every sender writes: one space, ASCII digits, a token. Nine digits cannot pass
    # 2**31-1 and a token holds no white space, so this is what the exact path returns; any
    # other spelling (tabs, more spaces, ten digits, a bad method) goes there.
    if (
        number.isdigit()
        and len(number) < 10
        and number.isascii()
        and method
        and not method.strip(TOKEN_CHARS)
    ):
        if _COMPILED:
            return CSeq(int(number), method)
        cseq: CSeq = _new_object(CSeq)
        _set_seq(cseq, int(number))
        _set_method(cseq, method)
        return cseq
    return _parse_cseq_exact(value)


# A whole "CSeq: 4711 INVITE" header line in the form every sender writes (name, colon, the
# blanks unfolding strips, at most 9 digits, one space, a token method). Possessive repeats of
# classes that each stop at the next literal: linear.
_CSEQ_LINE: Final = re.compile(r"[^:]*+:[ \t]*+([0-9]{1,9}) ([A-Za-z0-9\-.!%*_+`'~]++)[ \t]*+")


def _cseq_in_line(line: str) -> CSeq | None:
    """The CSeq of a header line in the common form, else None (the caller then unfolds the
    value and calls :func:`parse_cseq`, which decides alone)."""
    m = _CSEQ_LINE.fullmatch(line)
    if m is None:
        return None
    if _COMPILED:
        return CSeq(int(m[1]), m[2])
    cseq: CSeq = _new_object(CSeq)
    _set_seq(cseq, int(m[1]))
    _set_method(cseq, m[2])
    return cseq


def _parse_cseq_exact(value: str) -> CSeq:
    number, method = split_lws(value)
    seq = parse_uint(number, name="CSeq", maximum=_CSEQ_MAX)
    if not method or method.strip(TOKEN_CHARS):
        raise SipParseError(f"invalid CSeq method: {method[:40]!r}")
    return CSeq(seq, method)
